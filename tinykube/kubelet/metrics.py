"""The kubelet's Prometheus metrics, in a registry per kubelet (several run in one test process).

Names are upstream's: kubelet_running_pods, kubelet_running_containers{container_state},
kubelet_pod_start_duration_seconds, kubelet_pod_worker_duration_seconds{operation},
kubelet_node_name{node}, and on /metrics/probes prober_probe_total.
"""

from __future__ import annotations

from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

POD_START_BUCKETS = (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900,
                     1200, 1800, 2700, 3600)
WORKER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _StateCollector(Collector):
    """Gauges computed at scrape time from the kubelet's live state."""

    def __init__(self, node: str, running_pods: Callable[[], int],
                 container_states: Callable[[], dict[str, int]]) -> None:
        self.node = node
        self.running_pods = running_pods
        self.container_states = container_states

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily("kubelet_running_pods", "Number of pods that have a running pod sandbox",
                                value=self.running_pods())
        states = GaugeMetricFamily("kubelet_running_containers", "Number of containers currently running",
                                   labels=["container_state"])
        for state, count in sorted(self.container_states().items()):
            states.add_metric([state], count)
        yield states
        name = GaugeMetricFamily("kubelet_node_name", "The node's name. The count is always 1.", labels=["node"])
        name.add_metric([self.node], 1)
        yield name


class KubeletMetrics:
    def __init__(self, node: str, running_pods: Callable[[], int],
                 container_states: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.probes_registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_StateCollector(node, running_pods, container_states))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.pod_start = Histogram(
            "kubelet_pod_start_duration_seconds",
            "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
            buckets=POD_START_BUCKETS, registry=self.registry)
        self.pod_worker = Histogram(
            "kubelet_pod_worker_duration_seconds",
            "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
            ["operation"], buckets=WORKER_BUCKETS, registry=self.registry)
        self.probe_total = Counter(
            "prober_probe", "Cumulative number of a liveness, readiness or startup probe for a container by result.",
            ["probe_type", "result", "container", "pod", "namespace", "pod_uid"], registry=self.probes_registry)
