"""``/metrics``: kube-apiserver's Prometheus metrics, under upstream's names and labels.

Each server owns a ``CollectorRegistry`` (two API servers in one test process must not
share counters). Requests are counted by a request observer (the pipeline calls it with
the parsed RequestInfo, the status code and the duration once the response is done); the
in-flight gauge by a middleware; store latency by wrapping the store's calls once the
server has opened it; object counts are read from the watch cache at scrape time. The watch
handler reports the events it sends through ``server.metrics.observe_watch_events``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import gc_collector, platform_collector, process_collector

from tinykube import aio
from tinykube.api import kinds
from tinykube.api.kinds import ResourceInfo
from tinykube.apiserver.request import REQUEST_INFO, RequestInfo
from tinykube.storage.store import StoreError

log = logging.getLogger(__name__)

REQUEST_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5,
                   6, 8, 10, 15, 20, 30, 45, 60)
ETCD_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6,
                8, 10, 15, 20, 30, 45, 60)
REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope",
                  "component")
LONGRUNNING_LABELS = ("verb", "group", "version", "resource", "subresource", "scope",
                      "component")
_VERBS = {"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT",
          "patch": "PATCH", "delete": "DELETE", "deletecollection": "DELETE"}
_CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
# Store calls timed as etcd_request_duration_seconds{operation}, named as upstream.
_STORE_OPERATIONS = {"get": "get", "list": "listWithCount", "count": "count",
                     "create": "create", "update": "update", "delete": "delete",
                     "current_revision": "getRevision", "compact": "compact"}
SCRAPE_COUNT_TIMEOUT = 2.0


def canonical_verb(info: RequestInfo) -> str:
    """The ``verb`` label: upstream reports HTTP-ish verbs (LIST, WATCH, POST, CONNECT)."""
    if not info.is_resource_request:
        return info.method.upper()
    if info.subresource in _CONNECT_SUBRESOURCES:
        return "CONNECT"
    return _VERBS.get(info.verb, info.verb.upper())


def scope(info: RequestInfo) -> str:
    """The ``scope`` label: resource (one object), namespace, cluster, or "" (non-resource)."""
    if not info.is_resource_request:
        return ""
    if info.name:
        return "resource"
    return "namespace" if info.namespace else "cluster"


def _child(metric: Any, **labels: str) -> Any:
    """``metric.labels(**labels)``, memoised per metric (children are never removed)."""
    key = tuple(labels.items())
    try:
        return metric._tinykube_children[key]
    except AttributeError:
        metric._tinykube_children = {}
    except KeyError:
        pass
    child = metric._tinykube_children[key] = metric.labels(**labels)
    return child


def dry_run(info: RequestInfo) -> str:
    uri = info.request_uri
    if "dryRun" not in uri and "%" not in uri:
        return ""
    values = parse_qs(urlsplit(info.request_uri).query).get("dryRun", [])
    return ",".join(sorted(values))


def request_labels(info: RequestInfo) -> dict[str, str]:
    """The labels of one request; a non-resource request carries its path as subresource."""
    if not info.is_resource_request:
        return {"verb": canonical_verb(info), "dry_run": "", "group": "", "version": "",
                "resource": "", "subresource": info.path, "scope": "",
                "component": "apiserver"}
    return {
        "verb": canonical_verb(info),
        "dry_run": dry_run(info),
        "group": info.api_group,
        "version": info.api_version,
        "resource": info.resource,
        "subresource": info.subresource,
        "scope": scope(info),
        "component": "apiserver",
    }


def is_apply(request: web.Request) -> bool:
    """A server-side apply: PATCH with an apply-patch body."""
    return request.method == "PATCH" and request.headers.get(
        "Content-Type", "").startswith("application/apply-patch")


def request_kind(method: str) -> str:
    """``readOnly`` or ``mutating``, the label of apiserver_current_inflight_requests."""
    return "readOnly" if method.upper() in ("GET", "HEAD", "OPTIONS") else "mutating"


@dataclass
class APIServerMetrics:
    """Every metric one API server exports, registered in its own registry."""

    registry: CollectorRegistry
    requests: Counter
    durations: Histogram
    inflight: Gauge
    etcd_durations: Histogram
    storage_objects: Gauge
    watch_events: Counter
    longrunning: Gauge
    # audit IDs of in-flight server-side apply PATCHes (upstream counts them as APPLY)
    applies: set[str] = field(default_factory=set)

    @classmethod
    def create(cls) -> "APIServerMetrics":
        registry = CollectorRegistry(auto_describe=True)
        process_collector.ProcessCollector(registry=registry)
        platform_collector.PlatformCollector(registry=registry)
        gc_collector.GCCollector(registry=registry)
        return cls(
            registry=registry,
            requests=Counter(
                "apiserver_request_total",
                "Counter of apiserver requests broken out for each verb, dry run value, "
                "group, version, resource, scope, component, and HTTP response code.",
                REQUEST_LABELS + ("code",), registry=registry),
            durations=Histogram(
                "apiserver_request_duration_seconds",
                "Response latency distribution in seconds for each verb, dry run value, "
                "group, version, resource, subresource, scope and component.",
                REQUEST_LABELS, buckets=REQUEST_BUCKETS, registry=registry),
            inflight=Gauge(
                "apiserver_current_inflight_requests",
                "Maximal number of currently used inflight request limit of this apiserver "
                "per request kind in last second.", ("request_kind",), registry=registry),
            etcd_durations=Histogram(
                "etcd_request_duration_seconds",
                "Etcd request latency in seconds for each operation and object type.",
                ("operation", "type"), buckets=ETCD_BUCKETS, registry=registry),
            storage_objects=Gauge(
                "apiserver_storage_objects",
                "Number of stored objects at the time of last check split by kind.",
                ("resource",), registry=registry),
            watch_events=Counter(
                "apiserver_watch_events_total",
                "Number of events sent in watch clients", ("group", "version", "kind"),
                registry=registry),
            longrunning=Gauge(
                "apiserver_longrunning_requests",
                "Gauge of all active long-running apiserver requests broken out by verb, "
                "group, version, resource, scope and component. Not all requests are "
                "tracked this way.", LONGRUNNING_LABELS, registry=registry),
        )

    def observe_request(self, info: RequestInfo, code: int, seconds: float) -> None:
        labels = request_labels(info)
        if info.audit_id in self.applies:
            self.applies.discard(info.audit_id)
            labels["verb"] = "APPLY"
        _child(self.requests, **labels, code=str(code)).inc()
        _child(self.durations, **labels).observe(seconds)

    def observe_watch_events(self, info: ResourceInfo, count: int = 1) -> None:
        """For the watch handler: ``count`` events of ``info``'s kind were sent."""
        _child(self.watch_events, group=info.group, version=info.version,
                                 kind=info.kind).inc(count)

    def longrunning_gauge(self, info: RequestInfo) -> Gauge | None:
        """apiserver_longrunning_requests for watches and connections (None otherwise)."""
        labels = request_labels(info)
        if labels["verb"] not in ("WATCH", "CONNECT"):
            return None
        return _child(self.longrunning, **{k: labels[k] for k in LONGRUNNING_LABELS})

    async def refresh_storage_objects(self, store: Any, watch_cache: Any = None) -> None:
        """Set apiserver_storage_objects per kind: from the watch cache's current objects
        when the server has one (no store round trips), else from the store's counts."""
        if store is None and watch_cache is None:
            return
        seen: set[str] = set()
        for info in kinds.RESOURCES:
            prefix = info.storage_prefix()
            if "create" not in info.verbs or prefix in seen:
                continue
            seen.add(prefix)
            if watch_cache is not None:
                count = len(watch_cache.cache_for(info).objects)
            else:
                _, count = await store.count(prefix)
            label = f"{info.resource}.{info.group}" if info.group else info.resource
            self.storage_objects.labels(resource=label).set(count)


def _storage_type(key: Any) -> str:
    """The ``type`` label: the resource a store key belongs to (/registry/<resource>/...)."""
    if isinstance(key, str) and key.startswith("/registry/"):
        return key.split("/")[2]
    return ""


class InstrumentedStore:
    """The server's store with each call timed into etcd_request_duration_seconds."""

    def __init__(self, store: Any, histogram: Histogram):
        self._store = store
        self._histogram = histogram

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        operation = _STORE_OPERATIONS.get(name)
        if operation is None or not callable(attr):
            return attr
        return self._timed(attr, operation)

    def _timed(self, call: Callable, operation: str) -> Callable:
        histogram = self._histogram

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await call(*args, **kwargs)
            finally:
                _child(histogram, operation=operation, type=_storage_type(
                    args[0] if args else kwargs.get("key", kwargs.get("prefix")))).observe(
                    time.perf_counter() - started)

        return timed


METRICS_KEY = web.AppKey("apiserver_metrics", APIServerMetrics)


def setup(app: web.Application, server: Any) -> None:
    """Create the server's metrics, feed them, and serve ``GET /metrics``."""
    metrics = APIServerMetrics.create()
    app[METRICS_KEY] = metrics
    server.metrics = metrics
    server.request_observers.append(metrics.observe_request)

    @web.middleware
    async def count_inflight(request: web.Request, handler: Callable) -> web.StreamResponse:
        info: RequestInfo | None = request.get(REQUEST_INFO)
        if info is not None and is_apply(request):
            metrics.applies.add(info.audit_id)
        gauges = [_child(metrics.inflight, request_kind=request_kind(request.method))]
        longrunning = metrics.longrunning_gauge(info) if info is not None else None
        if longrunning is not None:
            gauges.append(longrunning)
        for gauge in gauges:
            gauge.inc()
        try:
            return await handler(request)
        finally:
            for gauge in gauges:
                gauge.dec()

    app.middlewares.append(count_inflight)
    metrics.inflight.labels(request_kind="readOnly")
    metrics.inflight.labels(request_kind="mutating")

    async def instrument_store(_app: web.Application) -> None:
        if server.store is not None and not isinstance(server.store, InstrumentedStore):
            server.store = InstrumentedStore(server.store, metrics.etcd_durations)

    app.on_startup.append(instrument_store)

    async def handle(_request: web.Request) -> web.Response:
        try:
            await aio.wait_for(
                metrics.refresh_storage_objects(server.store, server.watch_cache),
                SCRAPE_COUNT_TIMEOUT)
        except (asyncio.TimeoutError, OSError, StoreError) as err:
            # the gauge keeps its last values, as upstream's periodic refresh does
            log.warning("counting stored objects for /metrics failed: %s", err)
        body = generate_latest(metrics.registry)
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app.router.add_get("/metrics", handle)
