"""NodeResourcesFit: the pod's requests must fit the node's allocatable minus what its pods
already request (cpu, memory, ephemeral-storage, pod count and extended resources such as
``nvidia.com/gpu``); scoring prefers the least (or most) allocated nodes."""

from __future__ import annotations

from typing import Any

from tinykube.scheduler.framework import (MAX_NODE_SCORE, CycleState, PreFilterResult, Status,
                                          unschedulable)
from tinykube.scheduler.nodeinfo import CPU, EPHEMERAL, MEMORY, NodeInfo, PodInfo

NAME = "NodeResourcesFit"
TOO_MANY_PODS = "Too many pods"
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
DEFAULT_RESOURCES = ({"name": CPU, "weight": 1}, {"name": MEMORY, "weight": 1})


def insufficient_resources(pod: PodInfo, node: NodeInfo) -> list[str]:
    """Upstream's ``fitsRequest`` reasons: "Too many pods", "Insufficient <resource>"."""
    reasons: list[str] = []
    alloc, used, req = node.allocatable, node.requested, pod.requests
    if len(node.pods) + 1 > alloc.pods:
        reasons.append(TOO_MANY_PODS)
    if req.milli_cpu and alloc.milli_cpu < req.milli_cpu + used.milli_cpu:
        reasons.append("Insufficient cpu")
    if req.memory and alloc.memory < req.memory + used.memory:
        reasons.append("Insufficient memory")
    if req.ephemeral_storage and \
            alloc.ephemeral_storage < req.ephemeral_storage + used.ephemeral_storage:
        reasons.append("Insufficient ephemeral-storage")
    for name, value in req.scalars.items():
        if value and alloc.scalars.get(name, 0) < value + used.scalars.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def _requested_and_allocatable(pod: PodInfo, node: NodeInfo,
                               resource: str) -> tuple[int, int]:
    """Scoring uses the non-zero requests (100m CPU / 200Mi when unset), as upstream."""
    if resource == CPU:
        return node.non_zero_cpu + pod.non_zero_cpu, node.allocatable.milli_cpu
    if resource == MEMORY:
        return node.non_zero_mem + pod.non_zero_mem, node.allocatable.memory
    if resource == EPHEMERAL:
        return (node.requested.ephemeral_storage + pod.requests.ephemeral_storage,
                node.allocatable.ephemeral_storage)
    return (node.requested.scalars.get(resource, 0) + pod.requests.scalars.get(resource, 0),
            node.allocatable.scalars.get(resource, 0))


def least_allocated(requested: int, allocatable: int) -> int:
    if allocatable == 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


def most_allocated(requested: int, allocatable: int) -> int:
    if allocatable == 0:
        return 0
    return min(requested, allocatable) * MAX_NODE_SCORE // allocatable


class NodeResourcesFit:
    name = NAME

    def __init__(self, strategy: str = LEAST_ALLOCATED,
                 resources: tuple[dict[str, Any], ...] = DEFAULT_RESOURCES) -> None:
        if strategy not in (LEAST_ALLOCATED, MOST_ALLOCATED):
            raise ValueError(f"scoringStrategy.type {strategy!r} is not supported")
        self.scorer = least_allocated if strategy == LEAST_ALLOCATED else most_allocated
        self.resources = [(r["name"], int(r.get("weight", 1))) for r in resources]
        self.simple = [r for r, _ in self.resources] == [CPU, MEMORY] and \
            all(w == 1 for _, w in self.resources) and strategy == LEAST_ALLOCATED
        self._statuses: dict[tuple[str, ...], Status] = {}  # statuses are immutable values

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        """The pod's requests are computed once in PodInfo; nothing more to prepare."""
        return None, None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        alloc, used, req = node.allocatable, node.requested, pod.requests
        # fast path: the common cpu/memory/pods-only pod that fits
        if (len(node.pods) < alloc.pods and not req.scalars and not req.ephemeral_storage
                and alloc.milli_cpu >= req.milli_cpu + used.milli_cpu
                and alloc.memory >= req.memory + used.memory):
            return None
        reasons = tuple(insufficient_resources(pod, node))
        if not reasons:
            return None
        status = self._statuses.get(reasons)
        if status is None:
            status = self._statuses[reasons] = unschedulable(*reasons, plugin=NAME)
        return status

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if self.simple:
            alloc = node.allocatable
            cap_cpu, cap_mem = alloc.milli_cpu, alloc.memory
            cpu = node.non_zero_cpu + pod.non_zero_cpu
            mem = node.non_zero_mem + pod.non_zero_mem
            cpu_score = (cap_cpu - cpu) * MAX_NODE_SCORE // cap_cpu if 0 < cap_cpu and cpu <= cap_cpu else 0
            mem_score = (cap_mem - mem) * MAX_NODE_SCORE // cap_mem if 0 < cap_mem and mem <= cap_mem else 0
            return (cpu_score + mem_score) // 2
        total = weights = 0
        for resource, weight in self.resources:
            requested, allocatable = _requested_and_allocatable(pod, node, resource)
            if allocatable == 0:
                continue  # resources the node lacks do not count (upstream skips them)
            total += self.scorer(requested, allocatable) * weight
            weights += weight
        return total // weights if weights else 0


def new(args: dict[str, Any], handle: Any) -> NodeResourcesFit:
    strategy = args.get("scoringStrategy") or {}
    return NodeResourcesFit(strategy.get("type") or LEAST_ALLOCATED,
                            tuple(strategy.get("resources") or DEFAULT_RESOURCES))
