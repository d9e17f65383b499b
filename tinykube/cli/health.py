"""Health checks of a running cluster's components, as ``up`` and ``status`` show them.

Each component serves a health endpoint on its own port (the ports of the tutorial's
table); a check is one GET to it. The scheduler and controller manager serve HTTPS on
10259/10257 as upstream does, so both schemes are tried there.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import aiohttp
import orjson

from tinykube.cli.cluster import ClusterSettings

_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


@dataclass
class Check:
    name: str
    url: str
    schemes: tuple[str, ...] = ("http",)
    expect_node_ready: bool = False
    ok: bool = False
    detail: str = ""

    @property
    def endpoint(self) -> str:
        return self.url.split("://", 1)[-1]


def component_checks(settings: ClusterSettings) -> list[Check]:
    """One check per component of a ``tinykube up`` cluster."""
    ports = settings.ports
    api = f"127.0.0.1:{ports['apiserver']}"
    checks = []
    if settings.store == "etcd" and not settings.etcd_servers:
        checks.append(Check("etcd", f"http://127.0.0.1:{ports['etcd_client']}/health"))
    checks += [
        Check("kube-apiserver", f"http://{api}/readyz", ("http", "https")),
        Check("kube-scheduler", f"https://127.0.0.1:{ports['scheduler']}/healthz",
              ("https", "http")),
        Check("kube-controller-manager",
              f"https://127.0.0.1:{ports['controller_manager']}/healthz", ("https", "http")),
        Check("kubelet", f"http://127.0.0.1:{ports['kubelet_healthz']}/healthz"),
        Check("kube-proxy", f"http://127.0.0.1:{ports['proxy_healthz']}/healthz"),
        Check("coredns", f"http://127.0.0.1:{ports['dns_health']}/health"),
        *([Check("dashboard", f"http://127.0.0.1:{ports['dashboard']}/healthz")]
          if settings.dashboard else []),
        Check(f"node {settings.node_name}", f"http://{api}/api/v1/nodes/{settings.node_name}",
              ("http", "https"), expect_node_ready=True),
    ]
    return checks


def _node_ready(body: bytes) -> tuple[bool, str]:
    node = orjson.loads(body)
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True", condition.get("reason", "")
    return False, "registering"


async def _probe(session: aiohttp.ClientSession, check: Check) -> None:
    rest = check.url.split("://", 1)[1]
    last_error = ""
    for scheme in check.schemes:
        try:
            async with session.get(f"{scheme}://{rest}",
                                   ssl=_INSECURE if scheme == "https" else None) as resp:
                body = await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            last_error = type(exc).__name__
            continue
        if resp.status == 404 and check.expect_node_ready:
            check.ok, check.detail = False, "registering"
        elif resp.status != 200:
            check.ok, check.detail = False, f"HTTP {resp.status}"
        elif check.expect_node_ready:
            check.ok, check.detail = _node_ready(body)
            check.detail = "" if check.ok else (check.detail or "NotReady")
        else:
            check.ok, check.detail = True, ""
        return
    check.ok, check.detail = False, "starting" if "Connect" in last_error else last_error


async def run_checks(checks: list[Check]) -> None:
    timeout = aiohttp.ClientTimeout(total=1.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(_probe(session, check) for check in checks))
