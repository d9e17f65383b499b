"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take only pods that tolerate
the ``node.kubernetes.io/unschedulable:NoSchedule`` taint."""

from __future__ import annotations

from typing import Any

from tinykube.api.pods import tolerates
from tinykube.scheduler.framework import SKIP, CycleState, PreFilterResult, Status, unresolvable
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "NodeUnschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_REASON_UNKNOWN_CONDITION = "node(s) had unknown conditions"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    return not node.unschedulable or tolerates(pod.spec.get("tolerations"), UNSCHEDULABLE_TAINT)


class NodeUnschedulable:
    name = NAME

    def __init__(self, handle: Any = None) -> None:
        self.handle = handle

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        """Skip the per-node check in cycles where no node is cordoned."""
        cache = getattr(self.handle, "cache", None)
        if cache is not None and not cache.unschedulable_nodes:
            return None, SKIP
        return None, None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if node.node is None:
            return unresolvable(ERR_REASON_UNKNOWN_CONDITION, plugin=NAME)
        if node.unschedulable and not fits(pod, node):
            return unresolvable(ERR_REASON_UNSCHEDULABLE, plugin=NAME)
        return None


def new(args: dict[str, Any], handle: Any) -> NodeUnschedulable:
    return NodeUnschedulable(handle)
