"""kube-proxy's HTTP endpoints: `/healthz` and `/livez` (:10256), `/metrics` (:10249).

Health follows upstream's ProxierHealthServer: healthy until an update has been queued for
longer than `health_timeout` without a successful sync behind it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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


def healthz_app(health: ProxierHealth) -> web.Application:
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
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner, runner.addresses[0][1]
