"""Request guards: the dashboard acts with its kubeconfig's credentials and has no login.

So, listening on loopback, it answers only requests addressed to a loopback name (a page
whose DNS name was rebound to 127.0.0.1 cannot read the cluster through it), and writes
must be same-origin JSON (a page on another site cannot make the browser scale or delete).
"""

from __future__ import annotations

import ipaddress
from typing import Awaitable, Callable

import orjson
from aiohttp import web

from tinykube.api.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def error_response(exc: ApiError) -> web.Response:
    """An ApiError as its ``meta/v1 Status`` JSON, with its code."""
    return web.Response(body=orjson.dumps(exc.status()), status=exc.code,
                        content_type="application/json")


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(address: str) -> bool:
    """Whether a bind address is loopback-only (then the Host check applies)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def host_name(host: str) -> str:
    """The name of a Host header, without its port (``[::1]:8001`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def loopback_host_only(bind_address: str) -> Middleware:
    """Refuse requests naming a non-loopback host when the dashboard listens on loopback."""
    enforce = is_loopback(bind_address)

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if enforce and host_name(request.host) not in LOOPBACK_NAMES | {bind_address}:
            return error_response(
                ApiError(403, "Forbidden", f"unexpected Host {request.host!r}"))
        return await handler(request)
    return check


def _cross_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is not None and origin != f"{request.scheme}://{request.host}"


@web.middleware
async def guard_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse cross-origin and non-JSON writes (the dashboard acts with its own identity)."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        if _cross_origin(request):
            return error_response(ApiError(403, "Forbidden", "cross-origin request refused"))
        if request.method == "POST" and request.content_type != "application/json":
            return error_response(ApiError(415, "UnsupportedMediaType",
                                           "the request body must be application/json"))
    return await handler(request)
