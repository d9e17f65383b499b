"""kube-proxy's Prometheus metrics, named as upstream's (`kubeproxy_*`), one registry per
proxy so several proxies can run in one process (tests, hollow nodes)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from tinykube.proxy.changes import AppliedChanges

SYNC_BUCKETS = tuple(0.001 * 2**i for i in range(15))  # upstream: ExponentialBuckets(0.001, 2, 15)
# upstream: LinearBuckets(0.25, 0.25, 2) + (1, 1, 59) + (60, 5, 12) + (120, 30, 7)
PROGRAMMING_BUCKETS = (
    (0.25, 0.5)
    + tuple(float(i) for i in range(1, 60))
    + tuple(60.0 + 5 * i for i in range(12))
    + tuple(120.0 + 30 * i for i in range(7))
)


class ProxyMetrics:
    """The metrics one proxier updates after every sync."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds", buckets=SYNC_BUCKETS, registry=r)
        self.full_sync_duration = Histogram(
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for full resyncs", buckets=SYNC_BUCKETS, registry=r)
        self.partial_sync_duration = Histogram(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs", buckets=SYNC_BUCKETS, registry=r)
        self.last_timestamp = Gauge(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced", registry=r)
        self.last_queued_timestamp = Gauge(
            "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
            "The last time a sync of proxy rules was queued", registry=r)
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds", buckets=PROGRAMMING_BUCKETS, registry=r)
        self.iptables_total = Gauge(
            "kubeproxy_sync_proxy_rules_iptables_total",
            "Total number of iptables rules owned by kube-proxy", ["table"], registry=r)
        self.iptables_last = Gauge(
            "kubeproxy_sync_proxy_rules_iptables_last",
            "Number of iptables rules written by kube-proxy in last sync", ["table"], registry=r)
        self.restore_failures = Counter(
            "kubeproxy_sync_proxy_rules_iptables_restore_failures",
            "Cumulative proxy iptables restore failures", registry=r)
        self.service_changes = Counter(
            "kubeproxy_sync_proxy_rules_service_changes",
            "Cumulative proxy rules Service changes", registry=r)
        self.endpoint_changes = Counter(
            "kubeproxy_sync_proxy_rules_endpoint_changes",
            "Cumulative proxy rules Endpoint changes", registry=r)
        self.rest_client_requests = Counter(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"], registry=r)

    def observe_sync(self, full: bool, changes: AppliedChanges, seconds: float) -> None:
        """Account one successful rules sync (iptables and nftables alike)."""
        self.sync_duration.observe(seconds)
        (self.full_sync_duration if full else self.partial_sync_duration).observe(seconds)
        now = time.time()
        self.last_timestamp.set(now)
        for trigger in changes.trigger_times:
            self.network_programming.observe(max(0.0, now - trigger))
        self.service_changes.inc(changes.service_changes)
        self.endpoint_changes.inc(changes.endpoint_changes)

    def count_request(self, code: str, method: str, host: str) -> None:
        """The API client's ``on_request_done`` hook: one `rest_client_requests_total` sample
        per request, by status code (or "<error>"), method and "host:port"."""
        self.rest_client_requests.labels(code, method, host).inc()

