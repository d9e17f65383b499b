"""The controller manager's secure port: /healthz, /livez, /readyz and /metrics.

As kube-controller-manager, it serves HTTPS with a self-signed certificate generated at
start when none is configured (``kubectl get componentstatuses`` and Prometheus scrape it
with verification off). The cloud controller manager reuses this server.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Callable

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthCheck = Callable[[], str | None]  # None when healthy, else the reason


def self_signed_context(host: str, common_name: str) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for ``host``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{common_name}")])
    now = dt.datetime.now(dt.timezone.utc)
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([san, x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


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
