"""An in-memory fake API server (aiohttp app) for testing clients without the real one.

It serves the REST shape the client relies on: collections and objects under ``/api/v1``
and ``/apis/<g>/<v>``, optimistic concurrency on ``resourceVersion``, ``limit``/``continue``,
equality label selectors, JSON merge patches, subresource POSTs, and line-delimited watches
from a resourceVersion (with bookmarks on demand and 410 Expired below the compacted
revision). Every request is recorded in ``requests`` so tests can assert on the wire.
It is a test double, not a second API server: no validation, defaulting or admission.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tinykube import aio
from tinykube.api.patch import merge_patch

Object = dict[str, Any]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    headers: dict[str, str]
    body: Any


@dataclass
class _Route:
    collection: str  # e.g. "/api/v1/pods"
    namespace: str
    name: str
    subresource: str


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json")


def _parse(path: str) -> _Route | None:
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        base, rest = "/api/v1", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        base, rest = f"/apis/{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return None
    return _Route(f"{base}/{rest[0]}", namespace, rest[1] if len(rest) > 1 else "",
                  rest[2] if len(rest) > 2 else "")


def _labels_match(obj: Object, selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        k, _, v = term.partition("=")
        if labels.get(k) != v.lstrip("="):
            return False
    return True


@dataclass
class FakeAPIServer:
    """State and handlers of the fake; ``app`` is the aiohttp application to serve."""

    revision: int = 1
    compacted: int = 0
    objects: dict[tuple[str, str, str], Object] = field(default_factory=dict)
    log: list[tuple[int, str, str, str, Object]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[tuple[int, str, str]] = field(default_factory=list)
    watch_generation: int = 0

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    # -- helpers for tests ---------------------------------------------------------------

    def put(self, collection: str, obj: Object, event: str = "ADDED") -> Object:
        """Store ``obj`` directly (as if another client wrote it) and log a watch event."""
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        self.revision += 1
        md["resourceVersion"] = str(self.revision)
        md.setdefault("uid", f"uid-{self.revision}")
        self.objects[(collection, md.get("namespace", ""), md["name"])] = obj
        self._record(event, collection, obj)
        return obj

    def remove(self, collection: str, namespace: str, name: str) -> Object:
        obj = self.objects.pop((collection, namespace, name))
        self.revision += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self._record("DELETED", collection, obj)
        return obj

    def bookmark(self, collection: str) -> None:
        """Emit a BOOKMARK at the current revision to watchers of ``collection``."""
        self._record("BOOKMARK", collection,
                     {"metadata": {"resourceVersion": str(self.revision)}}, bump=False)

    def compact(self) -> None:
        """Forget history: watches from any older resourceVersion now get 410 Expired."""
        self.compacted = self.revision
        self.log.clear()

    def drop_watches(self) -> None:
        """End every open watch stream cleanly (as a server timeout would)."""
        self.watch_generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def _record(self, event: str, collection: str, obj: Object, bump: bool = True) -> None:
        self.log.append((self.revision, event, collection,
                         (obj.get("metadata") or {}).get("namespace", ""), copy.deepcopy(obj)))
        self._changed.set()
        self._changed = asyncio.Event()

    # -- HTTP ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                      request.content_type, dict(request.headers), body))
        if self.fail_next:
            code, reason, message = self.fail_next.pop(0)
            return _status(code, reason, message)
        route = _parse(request.path)
        if route is None:
            return web.Response(body=b'{"paths":[]}', content_type="application/json")
        if request.method == "GET" and not route.name:
            if request.query.get("watch") in ("true", "1"):
                return await self._watch(request, route)
            return self._list(request, route)
        key = (route.collection, route.namespace, route.name)
        if request.method == "POST" and route.subresource:
            if key not in self.objects:
                return _status(404, "NotFound", f'not found "{route.name}"')
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success",
                                      "code": 201}, status=201, dumps=lambda o: orjson.dumps(
                                          o).decode())
        if request.method == "POST":
            return self._create(route, body)
        if key not in self.objects:
            name = route.collection.rsplit("/", 1)[1]
            return _status(404, "NotFound", f'{name} "{route.name}" not found')
        if request.method == "GET":
            return self._json(self.objects[key])
        if request.method == "PUT":
            return self._update(route, body)
        if request.method == "PATCH":
            merged = merge_patch(self.objects[key], body)
            return self._json(self.put(route.collection, merged, "MODIFIED"))
        if request.method == "DELETE":
            return self._json(self.remove(*key))
        return _status(405, "MethodNotAllowed", "method not allowed")

    @staticmethod
    def _json(obj: Any, status: int = 200) -> web.Response:
        return web.Response(status=status, body=orjson.dumps(obj),
                            content_type="application/json")

    def _matching(self, request: web.Request, route: _Route) -> list[Object]:
        selector = request.query.get("labelSelector", "")
        return [o for (c, ns, _), o in sorted(self.objects.items())
                if c == route.collection and (not route.namespace or ns == route.namespace)
                and _labels_match(o, selector)]

    def _list(self, request: web.Request, route: _Route) -> web.Response:
        items = self._matching(request, route)
        start = int(request.query.get("continue") or 0)
        limit = int(request.query.get("limit") or 0)
        page = items[start:start + limit] if limit else items[start:]
        list_meta: Object = {"resourceVersion": str(self.revision)}
        if limit and start + limit < len(items):
            list_meta["continue"] = str(start + limit)
        return self._json({"kind": "List", "apiVersion": "v1", "metadata": list_meta,
                           "items": page})

    def _create(self, route: _Route, body: Object) -> web.Response:
        md = body.setdefault("metadata", {})
        if route.namespace:
            md["namespace"] = route.namespace
        if (route.collection, route.namespace, md.get("name", "")) in self.objects:
            name = route.collection.rsplit("/", 1)[1]
            return _status(409, "AlreadyExists", f'{name} "{md.get("name")}" already exists')
        return self._json(self.put(route.collection, body), 201)

    def _update(self, route: _Route, body: Object) -> web.Response:
        key = (route.collection, route.namespace, route.name)
        want = (body.get("metadata") or {}).get("resourceVersion")
        have = self.objects[key]["metadata"]["resourceVersion"]
        if want and want != have:
            name = route.collection.rsplit("/", 1)[1]
            return _status(409, "Conflict",
                           f'Operation cannot be fulfilled on {name} "{route.name}": the object '
                           "has been modified; please apply your changes to the latest version "
                           "and try again")
        body.setdefault("metadata", {})["namespace"] = route.namespace
        if not route.namespace:
            body["metadata"].pop("namespace")
        return self._json(self.put(route.collection, body, "MODIFIED"))

    async def _watch(self, request: web.Request, route: _Route) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or 0)
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        if since and since < self.compacted:
            err = {"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Expired",
                "code": 410,
                "message": f"too old resource version: {since} ({self.compacted})"}}
            await resp.write(orjson.dumps(err) + b"\n")
            return resp
        bookmarks = request.query.get("allowWatchBookmarks") == "true"
        timeout = float(request.query.get("timeoutSeconds") or 3600)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        sent = since
        generation = self.watch_generation
        while loop.time() < deadline and generation == self.watch_generation:
            changed = self._changed
            for rev, etype, coll, ns, obj in list(self.log):
                if coll != route.collection or (route.namespace and ns != route.namespace):
                    continue
                if etype == "BOOKMARK":
                    if bookmarks and rev >= sent:
                        await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")
                    continue
                if rev <= sent:
                    continue
                sent = rev
                if not _labels_match(obj, request.query.get("labelSelector", "")):
                    continue
                await resp.write(orjson.dumps({"type": etype, "object": obj}) + b"\n")
            self.log = [e for e in self.log if e[1] != "BOOKMARK"]
            try:
                await aio.wait_for(changed.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                break
        return resp


@contextlib.asynccontextmanager
async def serve_fake() -> AsyncIterator[tuple[FakeAPIServer, str]]:
    """Run a FakeAPIServer on a free loopback port; yield it and its base URL."""
    fake = FakeAPIServer()
    runner = web.AppRunner(fake.app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
