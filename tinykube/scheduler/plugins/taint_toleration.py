"""TaintToleration: NoSchedule/NoExecute taints must be tolerated; untolerated
PreferNoSchedule taints lower a node's score."""

from __future__ import annotations

from typing import Any

from tinykube.api.pods import tolerates
from tinykube.scheduler.framework import (SKIP, CycleState, PreFilterResult, Status,
                                          default_normalize, unresolvable)
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "TaintToleration"
HARD_EFFECTS = ("NoSchedule", "NoExecute")


def untolerated_taint(tolerations: list[dict[str, Any]], node: NodeInfo) -> dict | None:
    """The first NoSchedule/NoExecute taint no toleration tolerates (None if all are)."""
    for taint in node.taints:
        if taint.get("effect") in HARD_EFFECTS and not tolerates(tolerations, taint):
            return taint
    return None


def err_reason(taint: dict[str, Any]) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


def count_intolerable_prefer_no_schedule(tolerations: list[dict[str, Any]],
                                         node: NodeInfo) -> int:
    prefer = [t for t in tolerations if t.get("effect") in (None, "", "PreferNoSchedule")]
    return sum(1 for taint in node.taints
               if taint.get("effect") == "PreferNoSchedule" and not tolerates(prefer, taint))


class TaintToleration:
    name = NAME

    def __init__(self, handle: Any = None) -> None:
        self.handle = handle

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        """Skip the per-node check in cycles where no node has a taint."""
        cache = getattr(self.handle, "cache", None)
        if cache is not None and not cache.tainted_nodes:
            return None, SKIP
        return None, None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.taints:
            return None
        taint = untolerated_taint(pod.spec.get("tolerations") or [], node)
        return None if taint is None else unresolvable(err_reason(taint), plugin=NAME)

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        cache = getattr(self.handle, "cache", None)
        if cache is not None and not cache.tainted_nodes:
            return SKIP
        if not any(t.get("effect") == "PreferNoSchedule" for n in nodes for t in n.taints):
            return SKIP  # no node carries a PreferNoSchedule taint: every node scores alike
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        return count_intolerable_prefer_no_schedule(pod.spec.get("tolerations") or [], node)

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        default_normalize(scores, reverse=True)


def new(args: dict[str, Any], handle: Any) -> TaintToleration:
    return TaintToleration(handle)
