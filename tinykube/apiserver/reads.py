"""GET and LIST: served from the watch cache when it is fresh enough, else from the store.

resourceVersion semantics follow kube-apiserver: unset means a consistent read (the
cache first catches up with the store's current revision), ``0`` means any cached state,
``N`` means not older than N (``resourceVersionMatch=Exact`` reads the store at N), and a
continue token reads the remaining pages at the first page's revision.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson
from aiohttp import web

from tinykube.api import errors
from tinykube.apiserver.context import Context
from tinykube.apiserver.listing import CONTINUE_EXPIRED, ContinueToken, Selection
from tinykube.apiserver.objects import store_errors
from tinykube.apiserver.responses import encode_list, encode_object
from tinykube.apiserver.watchcache import CachedObject, decode

STORE_PAGE = 500
CACHE_WAIT_SECONDS = 3.0


def parse_resource_version(raw: str | None) -> int | None:
    """None for unset, else the revision; 400 for anything but a non-negative integer."""
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{raw}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{raw}"')
    return value


async def wait_for_cache(ctx: Context, revision: int | None) -> bool:
    """Bring the cache to ``revision`` (None: the store's current one); False if it lags."""
    cache = ctx.server.watch_cache
    if revision is None:
        with store_errors(ctx.resource, ctx.name):
            return await cache.sync(CACHE_WAIT_SECONDS)
    if await cache.wait_for(revision, CACHE_WAIT_SECONDS):
        return True
    raise errors.timeout(f"Too large resource version: {revision}, current: {cache.revision}", 1)


async def get(ctx: Context) -> web.StreamResponse:
    revision = parse_resource_version(ctx.query.get("resourceVersion"))
    include = ctx.query.get("includeObject", "")
    if revision is not None:
        await wait_for_cache(ctx, revision)
        cached = ctx.server.watch_cache.get(ctx.resource, ctx.namespace, ctx.name)
        if cached is None:
            raise errors.not_found(ctx.shown_resource, ctx.name)
        if ctx.view is not None:
            return encode_object(ctx.fmt, ctx.shown_resource, ctx.view(cached.obj), None,
                                 include)
        return encode_object(ctx.fmt, ctx.resource, cached.obj, cached.raw, include)
    obj, _ = await ctx.objects.get(ctx.namespace, ctx.name)
    return encode_object(ctx.fmt, ctx.shown_resource, ctx.to_client(obj), None, include)


def _limit(ctx: Context) -> int:
    limit = ctx.int_param("limit") or 0
    return max(limit, 0)


async def list_(ctx: Context) -> web.StreamResponse:
    selection = Selection.parse(ctx.strategy, ctx.query.get("labelSelector"),
                                ctx.query.get("fieldSelector"))
    limit = _limit(ctx)
    token_text = ctx.query.get("continue", "")
    rv_text = ctx.query.get("resourceVersion")
    match = ctx.query.get("resourceVersionMatch", "")
    if match and match not in ("Exact", "NotOlderThan"):
        raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{match}": '
                                 f'supported values: "Exact", "NotOlderThan"')
    revision = parse_resource_version(rv_text)
    if match and revision is None:
        raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion "
                                 "is provided")
    if token_text:
        if revision is not None and revision != 0:
            raise errors.bad_request("specifying resource version is not allowed when using "
                                     "continue")
        token = ContinueToken.decode(token_text)
        return await _list_from_store(ctx, selection, limit, token.revision, token.start)
    if match == "Exact" and revision:
        return await _list_from_store(ctx, selection, limit, revision, "")
    if revision is None:
        if not await wait_for_cache(ctx, None):
            return await _list_from_store(ctx, selection, limit, None, "")
    elif revision > 0:
        await wait_for_cache(ctx, revision)
    return _list_from_cache(ctx, selection, limit)


def _prefix(ctx: Context) -> str:
    return ctx.resource.storage_prefix(ctx.namespace or None)


def _list_meta(revision: int, token: ContinueToken | None,
               remaining: int | None) -> dict[str, Any]:
    md: dict[str, Any] = {"resourceVersion": str(revision)}
    if token is not None:
        md["continue"] = token.encode()
        if remaining is not None:
            md["remainingItemCount"] = remaining
    return md


def _list_from_cache(ctx: Context, selection: Selection, limit: int) -> web.StreamResponse:
    cache = ctx.server.watch_cache
    revision = cache.revision
    items = cache.items(ctx.resource, ctx.namespace)
    predicate = selection.predicate()
    chosen: list[CachedObject] = []
    token = None
    remaining: int | None = None
    prefix = _prefix(ctx)
    last_key = ""
    for index, (key, cached) in enumerate(items):
        if predicate is not None and not predicate(cached.obj):
            continue
        if limit and len(chosen) == limit:
            token = ContinueToken(revision, last_key[len(prefix):])
            if predicate is None:
                remaining = len(items) - index
            break
        chosen.append(cached)
        last_key = key
    return _answer(ctx, chosen, _list_meta(revision, token, remaining))


def _answer(ctx: Context, chosen: list[CachedObject], list_meta: dict) -> web.StreamResponse:
    include = ctx.query.get("includeObject", "")
    if ctx.view is not None:
        shown = [ctx.view(c.obj) for c in chosen]
        return encode_list(ctx.fmt, ctx.shown_resource, [orjson.dumps(o) for o in shown], shown,
                           list_meta, include)
    objects = None if ctx.fmt.is_plain_json else [c.obj for c in chosen]
    return encode_list(ctx.fmt, ctx.resource, [c.raw for c in chosen], objects, list_meta,
                       include)


async def _list_from_store(ctx: Context, selection: Selection, limit: int,
                           revision: int | None, start: str) -> web.StreamResponse:
    """Page through the store at one revision until ``limit`` objects matched."""
    store = ctx.server.store
    prefix = _prefix(ctx)
    predicate: Callable[[dict], bool] | None = selection.predicate()
    chosen: list[CachedObject] = []
    start_after = prefix + start if start else None
    token = None
    while True:
        page_size = max(limit - len(chosen), STORE_PAGE) if limit else 0
        try:
            with store_errors(ctx.resource, ""):
                page = await store.list(prefix, revision=revision, limit=page_size,
                                        start_after=start_after)
        except errors.ApiError as err:
            if err.code == 410 and start:
                raise errors.gone_expired(CONTINUE_EXPIRED) from None
            raise
        revision = page.revision
        consumed = 0
        for kv in page.items:
            consumed += 1
            start_after = kv.key
            obj = decode(kv.value, kv.mod_revision)
            if predicate is None or predicate(obj):
                chosen.append(CachedObject.of(obj, kv.mod_revision))
                if limit and len(chosen) == limit:
                    break
        if limit and len(chosen) == limit:
            if consumed < len(page.items) or page.more:
                token = ContinueToken(revision, start_after[len(prefix):])
            break
        if not page.more or not page.items:
            break
    return _answer(ctx, chosen, _list_meta(revision, token, None))
