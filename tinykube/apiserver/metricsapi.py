"""``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics for ``kubectl top``.

Upstream serves them from metrics-server, an aggregated API that scrapes every kubelet.
tinykube's API server reads each node's kubelet summary API (``/stats/summary``) when
asked, the way metrics-server's first versions did, and keeps nothing: a node whose
kubelet does not answer within ``SCRAPE_TIMEOUT_SECONDS`` is left out, as metrics-server
leaves out what it could not scrape. CPU is in nanocores (``"123456n"``) and memory in
KiB (``"2048Ki"``), as metrics-server formats them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tinykube import aio
from tinykube.api import errors, kinds, meta
from tinykube.api.selectors import LabelSelector
from tinykube.apiserver import responses
from tinykube.apiserver.nodeproxy import announced_port, node_base

log = logging.getLogger(__name__)

NODE_METRICS = kinds.lookup("metrics.k8s.io", "v1beta1", "nodes")
POD_METRICS = kinds.lookup("metrics.k8s.io", "v1beta1", "pods")
NODES = kinds.lookup("", "v1", "nodes")
PODS = kinds.lookup("", "v1", "pods")
SCRAPE_TIMEOUT_SECONDS = 5.0
BASE = "/apis/metrics.k8s.io/v1beta1"
Obj = dict[str, Any]


def usage(stats: Obj) -> Obj:
    cpu = (stats.get("cpu") or {}).get("usageNanoCores") or 0
    memory = (stats.get("memory") or {}).get("workingSetBytes") or 0
    return {"cpu": f"{int(cpu)}n", "memory": f"{int(memory) // 1024}Ki"}


def node_metrics(node: Obj, summary: Obj) -> Obj:
    stats = summary.get("node") or {}
    return {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": meta.name(node), "labels": dict(meta.labels(node)),
                         "creationTimestamp": meta.now()},
            "timestamp": (stats.get("cpu") or {}).get("time") or meta.now(),
            "window": (stats.get("cpu") or {}).get("window") or "0s", "usage": usage(stats)}


def pod_metrics(pod: Obj, stats: Obj) -> Obj:
    return {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": meta.name(pod), "namespace": meta.namespace(pod),
                         "labels": dict(meta.labels(pod)), "creationTimestamp": meta.now()},
            "timestamp": (stats.get("cpu") or {}).get("time") or meta.now(),
            "window": (stats.get("cpu") or {}).get("window") or "0s",
            "containers": [{"name": c.get("name", ""), "usage": usage(c)} for c in stats.get("containers") or []]}


class Scraper:
    """Fetches kubelets' summaries through one HTTP session (kubelet certificates are
    self-signed and not verified, as for logs and exec)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._session: aiohttp.ClientSession | None = None

    async def summary(self, node: Obj) -> Obj | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))
        url = node_base(self.server, node) + "/stats/summary"
        session = self._session

        async def fetch() -> Obj:
            async with session.get(url) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientError(f"HTTP {resp.status}")
                return orjson.loads(await resp.read())

        try:
            return await aio.wait_for(fetch(), SCRAPE_TIMEOUT_SECONDS)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            log.info("metrics: no summary from node %s (%s): %s", meta.name(node), url, exc or type(exc).__name__)
            return None

    async def summaries(self, nodes: list[Obj]) -> list[tuple[Obj, Obj]]:
        """Each node with a kubelet server (hollow nodes announce port 0) and its summary,
        if its kubelet answered as that node."""
        served = [n for n in nodes if announced_port(n) != 0]
        found = await asyncio.gather(*(self.summary(n) for n in served))
        return [(n, s) for n, s in zip(served, found)
                if s is not None and (s.get("node") or {}).get("nodeName") == meta.name(n)]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _selected(request: web.Request, objs: list[Obj]) -> list[Obj]:
    text = request.query.get("labelSelector", "")
    if not text:
        return objs
    try:
        selector = LabelSelector.parse(text)
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None
    return [o for o in objs if selector.matches(meta.labels(o))]


def _nodes(server: Any) -> list[Obj]:
    return [entry.obj for entry in server.watch_cache.list(NODES, "")]


def setup(app: web.Application, server: Any) -> None:
    scraper = Scraper(server)

    async def close(_app: web.Application) -> None:
        await scraper.close()

    app.on_cleanup.append(close)

    async def list_nodes(request: web.Request) -> web.Response:
        nodes = _selected(request, _nodes(server))
        items = [node_metrics(n, s) for n, s in await scraper.summaries(nodes)]
        return responses.made_list(request, NODE_METRICS, items)

    async def get_node(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        node = server.watch_cache.get(NODES, "", name)
        found = await scraper.summaries([node.obj]) if node is not None else []
        if not found:
            raise errors.not_found(NODE_METRICS, name)
        return responses.made_object(request, NODE_METRICS, node_metrics(*found[0]))

    async def pods_metrics(namespace: str, name: str = "") -> list[Obj]:
        pods = {(meta.namespace(e.obj), meta.name(e.obj)): e.obj for e in server.watch_cache.list(PODS, namespace)}
        wanted = {(namespace, name)} if name else set(pods)
        node_names = {(p.get("spec") or {}).get("nodeName") for key, p in pods.items() if key in wanted}
        nodes = [n for n in _nodes(server) if meta.name(n) in node_names]
        out = []
        for _node, summary in await scraper.summaries(nodes):
            for stats in summary.get("pods") or []:
                ref = stats.get("podRef") or {}
                pod = pods.get((ref.get("namespace", ""), ref.get("name", "")))
                # by name: a static pod's mirror has a uid of its own
                if pod is not None and (meta.namespace(pod), meta.name(pod)) in wanted:
                    out.append(pod_metrics(pod, stats))
        return sorted(out, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"]))

    async def list_pods(request: web.Request) -> web.Response:
        items = await pods_metrics(request.match_info.get("namespace", ""))
        return responses.made_list(request, POD_METRICS, _selected(request, items))

    async def get_pod(request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        found = await pods_metrics(namespace, name)
        if not found:
            raise errors.not_found(POD_METRICS, name)
        return responses.made_object(request, POD_METRICS, found[0])

    app.router.add_get(f"{BASE}/nodes", list_nodes)
    app.router.add_get(f"{BASE}/nodes/{{name}}", get_node)
    app.router.add_get(f"{BASE}/pods", list_pods)
    app.router.add_get(f"{BASE}/namespaces/{{namespace}}/pods", list_pods)
    app.router.add_get(f"{BASE}/namespaces/{{namespace}}/pods/{{name}}", get_pod)
