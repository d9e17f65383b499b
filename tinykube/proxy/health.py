"""kube-proxy's HTTP endpoints: `/healthz` and `/livez` (:10256), `/metrics` (:10249).

Health follows upstream's ProxierHealthServer: healthy until an update has been queued for
longer than `health_timeout` without a successful sync behind it (so also while starting).

`serve_healthz` answers /healthz and /livez with asyncio's streams alone: kube-proxy binds
it first thing, before importing aiohttp and the proxier, so that its health is reported
while the rest of it starts. As a BestEffort static pod (no CPU request, as upstream's
DaemonSet) it gets almost no CPU while the control plane starts, and every millisecond of
CPU before the first answer costs far more than that in wall time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import orjson

from tinykube import aio

if TYPE_CHECKING:
    from aiohttp import web

    from tinykube.proxy.metrics import ProxyMetrics


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class ProxierHealth:
    """When rules were last synced and since when an update has been waiting."""

    health_timeout: float
    last_updated: float = 0.0  # wall clock of the last successful sync
    oldest_queued: float | None = None  # wall clock of the oldest unsynced request
    node_eligible: bool = True

    def queued(self) -> None:
        if self.oldest_queued is None:
            self.oldest_queued = time.time()

    def updated(self) -> None:
        self.last_updated = time.time()
        self.oldest_queued = None

    def healthy(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.oldest_queued is None or now - self.oldest_queued <= self.health_timeout

    def body(self, now: float | None = None) -> dict[str, object]:
        now = time.time() if now is None else now
        return {
            "lastUpdated": _rfc3339(self.last_updated) if self.last_updated else "",
            "currentTime": _rfc3339(now),
            "nodeEligible": self.node_eligible,
        }


def _healthz_answer(health: ProxierHealth, path: str) -> tuple[int, bytes]:
    if path == "/healthz":
        now = time.time()
        return (200 if health.healthy(now) else 503), orjson.dumps(health.body(now))
    if path == "/livez":
        return 200, b"ok"
    return 404, b"404: Not Found"


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthzServer:
    """/healthz and /livez over plain asyncio streams (one answer per connection)."""

    def __init__(self, health: ProxierHealth) -> None:
        self.health = health
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await aio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, body = 405, b""
            else:
                status, body = _healthz_answer(self.health, path)
            ctype = "application/json" if path == "/healthz" and status != 404 else "text/plain; charset=utf-8"
            writer.write(f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                         f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + (body if method != "HEAD" else b""))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()

    async def cleanup(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def serve_healthz(health: ProxierHealth, host: str, port: int) -> tuple[HealthzServer, int]:
    """Start /healthz and /livez on host:port (0 picks a free port); returns the server
    (`await server.cleanup()` stops it) and the bound port."""
    server = HealthzServer(health)
    return server, await server.start(host, port)


def healthz_app(health: ProxierHealth) -> web.Application:
    """The same endpoints as an aiohttp application (for embedding)."""
    from aiohttp import web

    async def healthz(_: web.Request) -> web.Response:
        now = time.time()
        status = 200 if health.healthy(now) else 503
        return web.Response(status=status, body=orjson.dumps(health.body(now)),
                            content_type="application/json")

    async def livez(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", livez)
    return app


def metrics_app(metrics: ProxyMetrics, health: ProxierHealth) -> web.Application:
    from aiohttp import web
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    async def serve_metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok" if health.healthy() else "unhealthy",
                            status=200 if health.healthy() else 503)

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start an app on host:port (0 picks a free port); returns the runner and bound port."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]
