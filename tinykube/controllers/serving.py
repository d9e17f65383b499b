"""The controller manager's secure port: /healthz, /livez, /readyz and /metrics.

As kube-controller-manager, it serves HTTPS with a self-signed certificate generated at
start when none is configured (``kubectl get componentstatuses`` and Prometheus scrape it
with verification off). The cloud controller manager reuses this server.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from tinykube.client import pki

HealthCheck = Callable[[], str | None]  # None when healthy, else the reason


def self_signed_context(host: str, common_name: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``host`` (and
    ``localhost``), its CN ``host@component`` as kube-controller-manager names it."""
    return pki.serving_cert(f"{host}@{common_name}", [host, "localhost"]).server_context()


class HealthServer:
    """Serves health checks and a Prometheus registry on one port."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry,
                 checks: dict[str, HealthCheck] | None = None, *, tls: bool = True,
                 component: str = "kube-controller-manager") -> None:
        self.host = host
        self.port = port
        self.registry = registry
        self.checks = dict(checks or {})
        self.tls = tls
        self.component = component
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        ssl_ctx = self_signed_context(self.host, self.component) if self.tls else None
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_ctx)
        await site.start()
        sockets = site._server.sockets if site._server else []  # noqa: SLF001
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    async def _health(self, request: web.Request) -> web.Response:
        failures = {name: reason for name, check in self.checks.items()
                    if (reason := check()) is not None}
        verbose = "verbose" in request.query
        if not failures and not verbose:
            return web.Response(text="ok")
        lines = [f"[{'-' if n in failures else '+'}]{n} "
                 f"{'failed: ' + failures[n] if n in failures else 'ok'}" for n in self.checks]
        body = "\n".join(lines) + ("\nhealthz check failed\n" if failures
                                   else "\nhealthz check passed\n")
        return web.Response(text=body, status=500 if failures else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
