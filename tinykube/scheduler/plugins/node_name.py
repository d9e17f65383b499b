"""NodeName: a pod that names a node (``spec.nodeName``) fits only that node."""

from __future__ import annotations

from typing import Any

from tinykube.scheduler.framework import SKIP, CycleState, PreFilterResult, Status, unresolvable
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"


def fits(pod: PodInfo, node: NodeInfo) -> bool:
    return not pod.node_name or pod.node_name == node.name


class NodeName:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        if not pod.node_name:
            return None, SKIP
        return PreFilterResult({pod.node_name}), None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return None if fits(pod, node) else unresolvable(ERR_REASON, plugin=NAME)


def new(args: dict[str, Any], handle: Any) -> NodeName:
    return NodeName()
