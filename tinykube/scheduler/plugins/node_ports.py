"""NodePorts: a pod's hostPorts must be free on the node (0.0.0.0 conflicts with any IP)."""

from __future__ import annotations

from typing import Any

from tinykube.scheduler.framework import SKIP, CycleState, PreFilterResult, Status, unschedulable
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
WILDCARD = "0.0.0.0"


def conflicts(wanted: frozenset[tuple[str, str, int]],
              used: dict[tuple[str, str, int], int]) -> bool:
    for ip, proto, port in wanted:
        for used_ip, used_proto, used_port in used:
            if used_port == port and used_proto == proto and (
                    ip == used_ip or WILDCARD in (ip, used_ip)):
                return True
    return False


class NodePorts:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        return (None, SKIP) if not pod.host_ports else (None, None)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if node.used_ports and conflicts(pod.host_ports, node.used_ports):
            return unschedulable(ERR_REASON, plugin=NAME)
        return None


def new(args: dict[str, Any], handle: Any) -> NodePorts:
    return NodePorts()
