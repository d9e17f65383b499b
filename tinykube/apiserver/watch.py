"""WATCH: a chunked stream of ``{"type", "object"}`` lines from the watch cache.

``resourceVersion`` unset or ``0`` starts with synthetic ADDED events for the current
state; ``N`` replays every change after N (410 Expired as an ERROR event when N is older
than the cache's history); ``sendInitialEvents=true`` sends the state as of at least N and
then a BOOKMARK annotated ``k8s.io/initial-events-end``. Registration and the initial
events happen without yielding to the loop, so no change can slip between them.
"""

from __future__ import annotations

import asyncio
import random
from typing import Callable

import orjson
from aiohttp import web

from tinykube.api import errors
from tinykube.api.errors import Cause
from tinykube.apiserver.context import Context
from tinykube.apiserver.listing import Selection
from tinykube.apiserver.reads import parse_resource_version, wait_for_cache
from tinykube.apiserver.responses import partial_metadata, to_table
from tinykube.api.selectors import FieldSelector
from tinykube.apiserver.watchcache import TRIGGER_SELECTORS, Watcher, WatcherClosed

MIN_REQUEST_TIMEOUT = 1800
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def _validate_options(ctx: Context) -> tuple[bool, bool, str]:
    allow_bookmarks = _truthy(ctx.query.get("allowWatchBookmarks"))
    send_initial_raw = ctx.query.get("sendInitialEvents")
    send_initial = _truthy(send_initial_raw)
    match = ctx.query.get("resourceVersionMatch", "")
    causes: list[Cause] = []
    if send_initial_raw is not None:
        if match != "NotOlderThan":
            causes.append(Cause.forbidden("sendInitialEvents", "sendInitialEvents is forbidden "
                                          "for watch unless resourceVersionMatch is set to "
                                          "NotOlderThan"))
        if send_initial and not allow_bookmarks:
            causes.append(Cause.forbidden("allowWatchBookmarks", "allowWatchBookmarks must be "
                                          "set to true when sendInitialEvents is true"))
    elif match:
        causes.append(Cause.forbidden("resourceVersionMatch", "resourceVersionMatch is "
                                      "forbidden for watch unless sendInitialEvents is "
                                      "provided"))
    if causes:
        raise errors.invalid("ListOptions", "", causes, group="meta.k8s.io")
    return allow_bookmarks, send_initial, match


def _bookmark(ctx: Context, revision: int, initial_end: bool = False) -> bytes:
    md: dict = {"resourceVersion": str(revision)}
    if initial_end:
        md["annotations"] = {INITIAL_EVENTS_END: "true"}
    return orjson.dumps({"type": "BOOKMARK", "object": {
        "kind": ctx.shown_resource.kind, "apiVersion": ctx.shown_resource.api_version,
        "metadata": md}}) + b"\n"


def _error_line(err: errors.ApiError) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": err.status()}) + b"\n"


def _added(raw: bytes) -> bytes:
    return b'{"type":"ADDED","object":' + raw + b"}\n"


def _predicate(ctx: Context) -> Callable[[dict], bool] | None:
    selection = Selection.parse(ctx.strategy, ctx.query.get("labelSelector"),
                                ctx.query.get("fieldSelector"))
    predicate = selection.predicate()
    if not ctx.name:
        return predicate
    name = ctx.name

    def named(obj: dict) -> bool:
        return (obj.get("metadata") or {}).get("name") == name and (
            predicate is None or predicate(obj))

    return named


async def watch(ctx: Context) -> web.StreamResponse:
    allow_bookmarks, send_initial, _ = _validate_options(ctx)
    predicate = _predicate(ctx)
    revision = parse_resource_version(ctx.query.get("resourceVersion"))
    timeout = ctx.int_param("timeoutSeconds")
    if not timeout or timeout <= 0:
        timeout = random.randint(MIN_REQUEST_TIMEOUT, 2 * MIN_REQUEST_TIMEOUT)
    cache = ctx.server.watch_cache
    if revision is None or send_initial:
        if revision:
            await wait_for_cache(ctx, revision)
        elif revision is None:
            await wait_for_cache(ctx, None)
    elif revision > cache.revision:
        await wait_for_cache(ctx, revision)
    watcher, expired = _register(ctx, predicate, revision, send_initial)
    try:
        return await _stream(ctx, watcher, expired, allow_bookmarks, float(timeout))
    finally:
        watcher.close()


def _trigger(ctx: Context) -> str | None:
    """The exact value the field selector requires of the resource's trigger field."""
    field = TRIGGER_SELECTORS.get(ctx.resource.resource)
    if field is None:
        return None
    return FieldSelector.parse(ctx.query.get("fieldSelector") or "").exact(field)


def _register(ctx: Context, predicate: Callable[[dict], bool] | None, revision: int | None,
              send_initial: bool) -> tuple[Watcher, errors.ApiError | None]:
    """Register the watcher and queue its initial events, atomically (no await)."""
    cache = ctx.server.watch_cache
    watcher = cache.watcher(ctx.resource, ctx.namespace, predicate, _trigger(ctx))
    resource_cache = watcher.cache
    initial: list[bytes] = []
    if send_initial or not revision:
        query_initial = ctx.query.get("sendInitialEvents")
        if send_initial or query_initial is None:
            for cached in cache.list(ctx.resource, ctx.namespace, predicate):
                initial.append(_added(cached.raw))
        if send_initial:
            initial.append(_bookmark(ctx, cache.revision, initial_end=True))
        watcher.preload(initial)
        return watcher, None
    if revision < resource_cache.floor:
        return watcher, errors.too_old_resource_version(revision, resource_cache.floor + 1)
    for event in resource_cache.events_after(revision):
        watcher.offer(event)
    return watcher, None


async def _stream(ctx: Context, watcher: Watcher, expired: errors.ApiError | None,
                  allow_bookmarks: bool, timeout: float) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={
        "Content-Type": "application/json", "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    await response.prepare(ctx.request)
    if expired is not None:
        await response.write(_error_line(expired))
        return response
    convert = _converter(ctx)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = ctx.server.config.watch_bookmark_interval
    next_bookmark = loop.time() + interval
    metrics = getattr(ctx.server, "metrics", None)  # None without the metrics plug-in
    try:
        while True:
            now = loop.time()
            if now >= deadline:
                break
            wait = deadline - now
            if allow_bookmarks:
                wait = max(min(wait, next_bookmark - now), 0)
            try:
                lines = await watcher.next_lines(wait)
            except WatcherClosed:
                break
            if lines:
                await response.write(convert(b"".join(lines)) if convert else b"".join(lines))
                if metrics is not None:
                    metrics.observe_watch_events(ctx.resource, len(lines))
            elif allow_bookmarks and loop.time() >= next_bookmark:
                await response.write(_bookmark(ctx, ctx.server.watch_cache.revision))
                next_bookmark = loop.time() + interval
        await response.write_eof()
    except ConnectionError:  # the client went away: nothing left to send it
        return response
    return response


def _converter(ctx: Context) -> Callable[[bytes], bytes] | None:
    """Per-watcher re-encoding of event objects for Table/PartialObjectMetadata clients."""
    fmt = ctx.fmt
    if (fmt.is_plain_json or not fmt.as_kind) and ctx.view is None:
        return None
    include = ctx.query.get("includeObject", "")

    def convert(chunk: bytes) -> bytes:
        out = []
        for line in chunk.splitlines():
            event = orjson.loads(line)
            obj = event.get("object") or {}
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                obj = event["object"] = ctx.to_client(obj)
                if fmt.as_kind == "Table":
                    rv = (obj.get("metadata") or {}).get("resourceVersion", "")
                    event["object"] = to_table(ctx.shown_resource, [obj],
                                               {"resourceVersion": rv}, include,
                                               fmt.as_version)
                elif fmt.as_kind:
                    event["object"] = partial_metadata(obj, fmt.as_version)
            out.append(orjson.dumps(event))
        return b"\n".join(out) + b"\n"

    return convert
