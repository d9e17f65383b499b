"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory would be used in
similar proportions after placing the pod (score = (1 - standard deviation) * 100)."""

from __future__ import annotations

import math
from typing import Any

from tinykube.scheduler.framework import MAX_NODE_SCORE, CycleState
from tinykube.scheduler.nodeinfo import CPU, MEMORY, NodeInfo, PodInfo

NAME = "NodeResourcesBalancedAllocation"


def balanced_score(fractions: list[float]) -> int:
    """(1 - std) * MAX_NODE_SCORE over the requested/allocatable fractions (capped at 1)."""
    if not fractions:
        return 0
    capped = [min(f, 1.0) for f in fractions]
    if len(capped) == 2:
        std = abs(capped[0] - capped[1]) / 2
    else:
        mean = sum(capped) / len(capped)
        std = math.sqrt(sum((f - mean) ** 2 for f in capped) / len(capped))
    return int((1 - std) * MAX_NODE_SCORE)


class NodeResourcesBalancedAllocation:
    name = NAME

    def __init__(self, resources: tuple[str, ...] = (CPU, MEMORY)) -> None:
        self.resources = resources

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if self.resources == (CPU, MEMORY):
            alloc, used, req = node.allocatable, node.requested, pod.requests
            if alloc.milli_cpu > 0 and alloc.memory > 0:
                cpu = (used.milli_cpu + req.milli_cpu) / alloc.milli_cpu
                mem = (used.memory + req.memory) / alloc.memory
                diff = (cpu if cpu < 1.0 else 1.0) - (mem if mem < 1.0 else 1.0)
                return int((1 - (diff if diff >= 0 else -diff) / 2) * MAX_NODE_SCORE)
        fractions = []
        for resource in self.resources:
            allocatable = node.allocatable.get(resource)
            if allocatable <= 0:
                continue
            requested = node.requested.get(resource) + pod.requests.get(resource)
            fractions.append(requested / allocatable)
        return balanced_score(fractions)


def new(args: dict[str, Any], handle: Any) -> NodeResourcesBalancedAllocation:
    names = tuple(r["name"] for r in args.get("resources") or ()) or (CPU, MEMORY)
    return NodeResourcesBalancedAllocation(names)
