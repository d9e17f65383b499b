"""Health checks of a running cluster's components, as ``up`` and ``status`` show them.

Each component serves a health endpoint on its own port (the ports of the tutorial's
table); a check is one GET to it. The scheduler and controller manager serve HTTPS on
10259/10257 as upstream does, so both schemes are tried there.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import orjson

from tinykube import aio
from tinykube.cli.cluster import ClusterSettings

# The endpoints serve self-signed certificates: nothing to verify, so no CA bundle to load
# (ssl.create_default_context() would read the system's, tens of milliseconds).
_INSECURE = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE
PROBE_TIMEOUT_SECONDS = 1.0


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


async def _get(scheme: str, rest: str, timeout: float) -> tuple[int, bytes]:
    """One HTTP/1.0 GET (the server closes the connection after its answer, and sends no
    chunked body): asyncio streams instead of aiohttp, whose import would cost ``up`` a
    fifth of a second of CPU while the cluster it waits for is starting on the same cores."""
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    reader, writer = await aio.wait_for(
        asyncio.open_connection(host, int(port), ssl=_INSECURE if scheme == "https" else None),
        timeout)
    try:
        writer.write(f"GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n"
                     "Accept: application/json\r\nUser-Agent: tinykube-up\r\n\r\n".encode())
        data = await aio.wait_for(reader.read(), max(0.0, deadline - loop.time()))
    finally:
        writer.transport.abort()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise ConnectionResetError("no HTTP answer")
    return int(status_line[1]), body


async def _probe(check: Check) -> None:
    rest = check.url.split("://", 1)[1]
    last_error = ""
    for scheme in check.schemes:
        try:
            status, body = await _get(scheme, rest, PROBE_TIMEOUT_SECONDS)
        except ConnectionRefusedError:  # nothing listens yet: no other scheme will do better
            last_error = "ConnectionRefusedError"
            break
        except (asyncio.TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            last_error = type(exc).__name__
            continue
        if status == 404 and check.expect_node_ready:
            check.ok, check.detail = False, "registering"
        elif status != 200:
            check.ok, check.detail = False, f"HTTP {status}"
        elif check.expect_node_ready:
            try:
                check.ok, check.detail = _node_ready(body)
            except orjson.JSONDecodeError:
                check.ok, check.detail = False, "bad answer"
            check.detail = "" if check.ok else (check.detail or "NotReady")
        else:
            check.ok, check.detail = True, ""
        return
    check.ok, check.detail = False, ("starting" if last_error in ("ConnectionRefusedError", "")
                                     else last_error)


async def run_checks(checks: list[Check]) -> None:
    await asyncio.gather(*(_probe(check) for check in checks))
