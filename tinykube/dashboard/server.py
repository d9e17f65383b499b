"""The dashboard: an aiohttp server over informer caches, with a live event stream.

Routes (all data is JSON; the browser page renders it):

- ``GET /`` the page; ``/app.js`` and ``/app.css`` its script and style
- ``GET /api/{overview,namespaces,workloads,services,events}?namespace=NS`` page data
  (``events`` also takes ``involved=kind/name``)
- ``GET /api/stream?namespace=NS`` Server-Sent Events: ``hello`` once, then one ``change``
  per object added/modified/deleted (with its row), ``resync`` when the browser fell behind;
  a reconnecting browser re-reads its page on ``hello`` (``Last-Event-ID`` is not replayed)
- ``POST /api/namespaces/{ns}/deployments/{name}/scale`` ``{"replicas": N}``
- ``DELETE /api/namespaces/{ns}/pods/{name}``
- ``GET /healthz``

Requests pass ``guards`` first (loopback Host names only; same-origin JSON writes).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.client.rest import Client
from tinykube.dashboard import actions, page
from tinykube.dashboard.config import DashboardConfig
from tinykube.dashboard.feed import (CLOSED, RESYNC, SSE_KEEPALIVE, Feed, Subscriber,
                                     sse_message)
from tinykube.dashboard.guards import Handler, error_response, guard_writes, loopback_host_only
from tinykube.dashboard.state import PAGES, ClusterState

log = logging.getLogger(__name__)

CLUSTER_SCOPED = frozenset({"nodes", "namespaces"})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status,
                        content_type="application/json")


class Dashboard:
    """The web UI: ``start()`` syncs the informers and listens; ``stop()`` undoes both."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.client = config.client or Client.from_kubeconfig(
            config.kubeconfig, config.context, user_agent="tinykube-dashboard")
        self._owns_client = config.client is None
        self.feed = Feed(config.max_pending_changes)
        self.state = ClusterState(self.client, self.feed)
        self.port = config.port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.bind_address}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[loopback_host_only(self.config.bind_address),
                                           guard_writes])
        app.router.add_get("/", self._index)
        app.router.add_get("/app.js", self._asset(page.SCRIPT, "application/javascript"))
        app.router.add_get("/app.css", self._asset(page.STYLE, "text/css"))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_get("/api/{page}", self._page)
        app.router.add_post("/api/namespaces/{namespace}/deployments/{name}/scale", self._scale)
        app.router.add_delete("/api/namespaces/{namespace}/pods/{name}", self._delete_pod)
        return app

    async def start(self) -> None:
        await self.state.start()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.bind_address, self.config.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the bound port when config.port is 0
        log.info("dashboard listening on %s", self.url)

    async def stop(self) -> None:
        self.feed.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.state.stop()
        if self._owns_client:
            await self.client.close()

    # -- pages -----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=page.HTML, content_type="text/html")

    @staticmethod
    def _asset(text: str, content_type: str) -> Handler:
        async def serve(request: web.Request) -> web.Response:
            return web.Response(text=text, content_type=content_type)
        return serve

    async def _healthz(self, request: web.Request) -> web.Response:
        synced = all(i.has_synced for i in self.state.informers.values())
        return web.Response(text="ok" if synced else "informers not synced",
                            status=200 if synced else 503)

    async def _page(self, request: web.Request) -> web.Response:
        name = request.match_info["page"]
        if name not in PAGES:
            return error_response(
                ApiError(404, "NotFound", f"no page {name!r}; pages: {list(PAGES)}"))
        return _json(self.state.page(name, request.query.get("namespace") or None,
                                     involved=request.query.get("involved") or None))

    # -- the live stream ---------------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        namespace = request.query.get("namespace") or None
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        subscriber = self.feed.subscribe()
        try:
            await response.prepare(request)
            await response.write(sse_message("hello", {"pages": list(PAGES)}))
            await self._pump(subscriber, response, namespace)
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            self.feed.unsubscribe(subscriber)
        return response

    async def _pump(self, subscriber: Subscriber, response: web.StreamResponse,
                    namespace: str | None) -> None:
        sent = 0
        while True:
            change = await subscriber.next(self.config.keepalive_seconds)
            if change is None:
                await response.write(SSE_KEEPALIVE)
            elif change is CLOSED:
                return
            elif change is RESYNC:
                await response.write(sse_message("resync", {}))
            elif (namespace and change.resource not in CLUSTER_SCOPED
                  and meta.namespace(change.obj) != namespace):
                continue
            else:
                sent += 1
                await response.write(
                    sse_message("change", self.state.change_row(change), sent))

    # -- actions -----------------------------------------------------------------------------

    async def _scale(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        try:
            body = await request.json(loads=orjson.loads)
        except ValueError:
            return error_response(ApiError(400, "BadRequest", "the request body is not JSON"))
        try:
            replicas = actions.parse_replicas(body)
            scale = await actions.scale_deployment(self.client, ns, name, replicas)
        except ApiError as exc:
            return error_response(exc)
        return _json(scale)

    async def _delete_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        try:
            result = await actions.delete_pod(self.client, ns, name)
        except ApiError as exc:
            return error_response(exc)
        return _json(result)
