"""CoreDNS-named Prometheus metrics (`coredns_dns_*`), one registry per server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = tuple(0.00025 * 2**i for i in range(16))  # CoreDNS: ExponentialBuckets(0.00025, 2, 16)


class DNSMetrics:
    def __init__(self, version: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "coredns_dns_requests", "Counter of DNS requests made per zone, protocol and family.",
            ["server", "zone", "view", "proto", "family", "type"], registry=r)
        self.responses = Counter(
            "coredns_dns_responses", "Counter of response status codes.",
            ["server", "zone", "view", "rcode", "plugin"], registry=r)
        self.duration = Histogram(
            "coredns_dns_request_duration_seconds", "Histogram of the time (in seconds) each request took.",
            ["server", "zone", "view", "type"], buckets=DURATION_BUCKETS, registry=r)
        self.build_info = Gauge(
            "coredns_build_info", "A metric with a constant '1' value labeled by version, revision, and goversion.",
            ["version", "revision", "goversion"], registry=r)
        self.build_info.labels(version, "tinykube", "python").set(1)
