"""``componentstatuses``: the (deprecated upstream, still served) control-plane health view.

``kubectl get componentstatuses`` lists the scheduler, the controller manager and etcd.
Nothing is stored: each request probes the components' ``/healthz`` endpoints and the
store, and answers ComponentStatus objects with one ``Healthy`` condition, whose message
or error text follows upstream's (Go's HTTP client error strings included).

The probed URLs default to upstream's secure ports; whoever starts the components points
them elsewhere with ``server.componentstatus_targets`` (or a config field of that name):
a dict of component name to healthz URL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tinykube import aio
from tinykube.api import errors, kinds, meta
from tinykube.apiserver import responses
from tinykube.storage.store import StoreError

DEFAULT_TARGETS: dict[str, str] = {
    "scheduler": "https://127.0.0.1:10259/healthz",
    "controller-manager": "https://127.0.0.1:10257/healthz",
}
ETCD_NAME = "etcd-0"
PROBE_TIMEOUT_SECONDS = 5.0
INFO = kinds.lookup("", "v1", "componentstatuses")
# Upstream marks the API deprecated; kubectl prints this as "Warning: ...".
DEPRECATION_WARNING = '299 - "v1 ComponentStatus is deprecated in v1.19+"'


@dataclass(frozen=True)
class ProbeResult:
    healthy: bool
    message: str = ""
    error: str = ""


def go_http_error(url: str, err: BaseException) -> str:
    """The text Go's net/http client gives for a failed GET, as upstream reports it."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = f"{parts.hostname}:{port}"
    cause = getattr(err, "os_error", None) or err.__cause__ or err
    if isinstance(err, asyncio.TimeoutError):
        return (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                "awaiting headers)")
    if isinstance(cause, ConnectionRefusedError):
        return f'Get "{url}": dial tcp {address}: connect: connection refused'
    if isinstance(err, aiohttp.ClientSSLError) or "SSL" in type(cause).__name__:
        return f'Get "{url}": http: server gave HTTP response to HTTPS client'
    if isinstance(cause, OSError) and cause.strerror:
        return f'Get "{url}": dial tcp {address}: connect: {cause.strerror.lower()}'
    return f'Get "{url}": {err}'


async def _get(session: aiohttp.ClientSession, url: str) -> ProbeResult:
    async with session.get(url, ssl=False) as resp:
        body = (await resp.text(errors="replace"))[:10240]
        if 200 <= resp.status < 400:
            return ProbeResult(True, body)
        return ProbeResult(False, f"HTTP probe failed with statuscode: {resp.status}")


async def probe_http(session: aiohttp.ClientSession, url: str) -> ProbeResult:
    """An HTTP(S) GET of a healthz URL; certificates are not verified (as upstream).

    A component that answers plain HTTP on its "secure" port (tinykube's scheduler does)
    fails the TLS handshake; it is then asked again over HTTP, and the HTTPS error is the
    one reported if that fails too.
    """
    try:
        return await _get(session, url)
    except aiohttp.ClientSSLError as err:
        if not url.startswith("https://"):
            return ProbeResult(False, go_http_error(url, err))
        try:
            return await _get(session, "http://" + url[len("https://"):])
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return ProbeResult(False, go_http_error(url, err))
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
        return ProbeResult(False, go_http_error(url, err))


async def probe_store(server: Any) -> ProbeResult:
    store = getattr(server, "store", None)
    if store is None:
        return ProbeResult(False, error="no store configured")
    try:
        await aio.wait_for(store.current_revision(), PROBE_TIMEOUT_SECONDS)
    except (StoreError, OSError, asyncio.TimeoutError) as err:
        return ProbeResult(False, error=str(err) or type(err).__name__)
    return ProbeResult(True, "ok")


def component_status(name: str, result: ProbeResult) -> dict:
    condition: dict[str, str] = {"type": "Healthy", "status": "True" if result.healthy
                                 else "False"}
    if result.message:
        condition["message"] = result.message
    if result.error:
        condition["error"] = result.error
    return {"kind": "ComponentStatus", "apiVersion": "v1",
            "metadata": {"name": name, "creationTimestamp": None},
            "conditions": [condition]}


# component name -> the ``component`` label of its control-plane (static) pod
CONTROL_PLANE_COMPONENTS = {"scheduler": "kube-scheduler",
                            "controller-manager": "kube-controller-manager"}
PODS = kinds.lookup("", "v1", "pods")


def probe_url(pod: dict) -> str | None:
    """The healthz URL a control-plane pod's liveness probe checks (kubeadm's layout)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        get = (container.get("livenessProbe") or {}).get("httpGet")
        if get and get.get("port"):
            scheme = str(get.get("scheme") or "HTTP").lower()
            host = get.get("host") or "127.0.0.1"
            return f"{scheme}://{host}:{get['port']}{get.get('path') or '/healthz'}"
    return None


def control_plane_targets(server: Any) -> dict[str, str]:
    """URLs found on the kube-system control-plane pods (``tier=control-plane``)."""
    cache = getattr(server, "watch_cache", None)
    if cache is None:
        return {}
    found: dict[str, str] = {}
    for cached in cache.list(PODS, "kube-system"):
        labels = meta.labels(cached.obj)
        if labels.get("tier") != "control-plane":
            continue
        for name, component in CONTROL_PLANE_COMPONENTS.items():
            url = probe_url(cached.obj) if labels.get("component") == component else None
            if url and name not in found:
                found[name] = url
    return found


def targets(server: Any) -> dict[str, str]:
    """name -> healthz URL. Explicit targets (``server.componentstatus_targets`` or a config
    field of that name) win; else the control-plane pods' liveness probes say where each
    component listens (``tinykube up`` runs them as static pods, as kubeadm does); else
    upstream's fixed local ports."""
    configured = (getattr(server, "componentstatus_targets", None)
                  or getattr(getattr(server, "config", None), "componentstatus_targets", None))
    if configured:
        return dict(configured)
    return {**DEFAULT_TARGETS, **control_plane_targets(server)}


async def probe_all(server: Any, names: list[str] | None = None) -> list[dict]:
    """ComponentStatus objects for every component (or only ``names``), probed at once."""
    urls = targets(server)
    wanted = names if names is not None else [*urls, ETCD_NAME]
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async def one(name: str) -> dict:
            if name == ETCD_NAME:
                return component_status(name, await probe_store(server))
            return component_status(name, await probe_http(session, urls[name]))

        return list(await asyncio.gather(*(one(n) for n in wanted)))


def setup(app: web.Application, server: Any) -> None:
    """Serve list and get of ``/api/v1/componentstatuses``."""
    async def handle_list(request: web.Request) -> web.Response:
        if request.query.get("watch") in ("1", "true"):
            raise errors.method_not_supported(INFO, "watch")
        resp = responses.made_list(request, INFO, await probe_all(server))
        resp.headers["Warning"] = DEPRECATION_WARNING
        return resp

    async def handle_get(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in targets(server) and name != ETCD_NAME:
            raise errors.not_found(INFO, name)
        (obj,) = await probe_all(server, [name])
        resp = responses.made_object(request, INFO, obj)
        resp.headers["Warning"] = DEPRECATION_WARNING
        return resp

    app.router.add_get("/api/v1/componentstatuses", handle_list)
    app.router.add_get("/api/v1/componentstatuses/{name}", handle_get)
