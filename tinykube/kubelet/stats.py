"""The kubelet's summary API (``/stats/summary``): CPU and memory of the node, its pods and
their containers, which the API server's ``metrics.k8s.io`` (``kubectl top``) reads.

Counters are cumulative (CPU nanoseconds); ``usageNanoCores`` is their rate between two
requests at least ``MIN_WINDOW`` apart, as upstream's CRI stats provider computes it
between scrapes. A container seen for the first time gets its average since it started,
so the first ``kubectl top`` already has figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinykube.api import meta
from tinykube.kubelet.runtime.interface import ContainerState, CRIError
from tinykube.kubelet.runtime.usage import CLOCK_TICKS
from tinykube.kubelet.status import rfc3339

if TYPE_CHECKING:
    from tinykube.kubelet.kubelet import Kubelet

MIN_WINDOW = 1.0  # seconds between the samples a rate is taken over
Obj = dict[str, Any]


@dataclass
class Rates:
    """usageNanoCores from cumulative CPU nanoseconds, per key (a container id, the node)."""

    # key -> (time, cumulative, rate, window seconds)
    last: dict[str, tuple[float, int, int, float]] = field(default_factory=dict)

    def rate(self, key: str, now: float, cumulative: int, since: float) -> tuple[int, float]:
        """(usageNanoCores, the seconds it was measured over)."""
        previous = self.last.get(key)
        if previous is not None and now - previous[0] < MIN_WINDOW:
            return previous[2], previous[3]  # too close to the last sample: its window goes on
        start, base = (previous[0], previous[1]) if previous is not None else (since, 0)
        window = max(now - start, MIN_WINDOW)
        rate = int(max(0, cumulative - base) / window)
        self.last[key] = (now, cumulative, rate, window)
        return rate, window

    def keep_only(self, keys: set[str]) -> None:
        for key in set(self.last) - keys:
            del self.last[key]


class SummaryProvider:
    def __init__(self, kubelet: "Kubelet") -> None:
        self.kubelet = kubelet
        self.rates = Rates()
        self.started = time.time()
        self.rates.rate("node", self.started, node_cpu_ns(), self.started)  # the node's baseline

    async def summary(self) -> Obj:
        """statsapi's Summary: the node, then each pod with running containers."""
        now = time.time()
        node: Obj = {"nodeName": self.kubelet.config.node_name, "startTime": rfc3339(self.started),
                     "cpu": self._cpu("node", now, node_cpu_ns(), self.started), "memory": node_memory(now)}
        seen = {"node"}
        pods = [pod for worker in list(self.kubelet.workers.workers.values())
                if (pod := await self._pod(worker, now, seen)) is not None]
        self.rates.keep_only(seen)  # containers gone since
        return {"node": node, "pods": pods}

    async def _pod(self, worker: Any, now: float, seen: set[str]) -> Obj | None:
        containers = []
        for name, rec in list(worker.records.items()):
            cur = rec.current
            if cur is None or cur.state != ContainerState.CONTAINER_RUNNING:
                continue
            try:
                stats = await self.kubelet.runtime.container_stats(cur.id)
            except CRIError:
                continue  # it stopped meanwhile
            seen.add(cur.id)
            containers.append({
                "name": name, "startTime": rfc3339(cur.started_at or now),
                "cpu": self._cpu(cur.id, stats.timestamp, stats.cpu_usage_core_nano_seconds, cur.started_at or now),
                "memory": {"time": rfc3339(stats.timestamp), "workingSetBytes": stats.memory_working_set_bytes}})
        if not containers:
            return None
        pod = worker.pod
        return {
            "podRef": {"name": meta.name(pod), "namespace": meta.namespace(pod), "uid": meta.uid(pod)},
            "startTime": worker.start_time or rfc3339(now), "containers": containers,
            "cpu": {"time": rfc3339(now), "usageNanoCores": sum(c["cpu"]["usageNanoCores"] for c in containers),
                    "usageCoreNanoSeconds": sum(c["cpu"]["usageCoreNanoSeconds"] for c in containers),
                    "window": containers[0]["cpu"]["window"]},
            "memory": {"time": rfc3339(now),
                       "workingSetBytes": sum(c["memory"]["workingSetBytes"] for c in containers)}}

    def _cpu(self, key: str, now: float, cumulative: int, since: float) -> Obj:
        """statsapi's CPUStats, with the window its rate was measured over (tinykube's own
        field: metrics.k8s.io reports it as ``window``)."""
        rate, window = self.rates.rate(key, now, cumulative, since)
        return {"time": rfc3339(now), "usageNanoCores": rate, "usageCoreNanoSeconds": cumulative,
                "window": f"{window:.3f}s"}


def node_cpu_ns() -> int:
    """CPU time the node spent busy (all but idle and iowait), in nanoseconds."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) * 1_000_000_000 // CLOCK_TICKS


def node_memory(now: float) -> Obj:
    info: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            info[key] = int(value.split()[0]) * 1024
    total, available = info.get("MemTotal", 0), info.get("MemAvailable", 0)
    return {"time": rfc3339(now), "availableBytes": available, "usageBytes": total - info.get("MemFree", 0),
            "workingSetBytes": total - available}
