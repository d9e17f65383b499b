"""PodTopologySpread: keep matching pods spread across topology domains.

``whenUnsatisfiable: DoNotSchedule`` constraints filter: placing the pod in a node's domain
may not make that domain exceed the least-loaded eligible domain by more than ``maxSkew``.
``ScheduleAnyway`` constraints score: emptier domains score higher. Eligible nodes carry
every constraint's topology key and, with ``nodeAffinityPolicy: Honor`` (the default),
match the pod's node selector and required node affinity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tinykube.api.pods import untolerated_taints
from tinykube.api.selectors import LabelSelector
from tinykube.scheduler.framework import (MAX_NODE_SCORE, SKIP, CycleState, PreFilterResult,
                                          Status, unresolvable, unschedulable)
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo
from tinykube.scheduler.plugins.node_affinity import compile_required

NAME = "PodTopologySpread"
ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints"
ERR_REASON_NODE_LABEL_NOT_MATCH = ERR_REASON_CONSTRAINTS_NOT_MATCH + " (missing required label)"


@dataclass
class Constraint:
    max_skew: int
    topology_key: str
    selector: LabelSelector
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def parse_constraints(pod: PodInfo, when: str) -> list[Constraint]:
    out = []
    for raw in pod.spec.get("topologySpreadConstraints") or ():
        if (raw.get("whenUnsatisfiable") or "DoNotSchedule") != when:
            continue
        selector_raw = dict(raw.get("labelSelector") or {})
        keys = raw.get("matchLabelKeys") or ()
        if keys:
            match = dict(selector_raw.get("matchLabels") or {})
            match.update({k: pod.labels[k] for k in keys if k in pod.labels})
            selector_raw["matchLabels"] = match
        out.append(Constraint(
            int(raw.get("maxSkew") or 1), raw.get("topologyKey") or "",
            LabelSelector.from_dict(selector_raw if raw.get("labelSelector") is not None
                                    or keys else None),
            int(raw.get("minDomains") or 1),
            (raw.get("nodeAffinityPolicy") or "Honor") == "Honor",
            (raw.get("nodeTaintsPolicy") or "Ignore") == "Honor"))
    return out


def eligible(pod: PodInfo, node: NodeInfo, constraints: list[Constraint],
             affinity: Any) -> bool:
    for c in constraints:
        if c.topology_key not in node.labels:
            return False
        if c.honor_affinity and affinity is not None and not affinity(node.labels, node.name):
            return False
        if c.honor_taints and untolerated_taints(pod.spec.get("tolerations"), node.taints):
            return False
    return True


def domain_counts(handle: Any, pod: PodInfo, c: Constraint,
                  eligible_nodes: dict[str, NodeInfo]) -> dict[str, int]:
    """Matching pods (in the pod's namespace) per domain; every eligible domain listed."""
    counts = {n.labels[c.topology_key]: 0 for n in eligible_nodes.values()}
    for other in handle.cache.pods_matching(c.selector, frozenset((pod.namespace,))):
        ni = eligible_nodes.get(other.node_name)
        if ni is not None:
            value = ni.labels[c.topology_key]
            counts[value] += 1
    return counts


@dataclass
class _State:
    constraints: list[Constraint]
    counts: list[dict[str, int]]
    minimums: list[int]
    self_match: list[int]

    def clone(self) -> _State:
        return _State(self.constraints, [dict(c) for c in self.counts], list(self.minimums),
                      self.self_match)


class PodTopologySpread:
    name = NAME

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    def _eligible_nodes(self, pod: PodInfo, constraints: list[Constraint]) -> dict[str, NodeInfo]:
        affinity = compile_required(pod)
        return {n.name: n for n in self.handle.cache.node_list()
                if eligible(pod, n, constraints, affinity)}

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        constraints = parse_constraints(pod, "DoNotSchedule")
        if not constraints:
            return None, SKIP
        nodes_ok = self._eligible_nodes(pod, constraints)
        counts = [domain_counts(self.handle, pod, c, nodes_ok) for c in constraints]
        minimums = [0 if len(cnt) < c.min_domains or not cnt else min(cnt.values())
                    for c, cnt in zip(constraints, counts)]
        self_match = [1 if c.selector.matches(pod.labels) else 0 for c in constraints]
        state[NAME] = _State(constraints, counts, minimums, self_match)
        return None, None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st: _State = state[NAME]
        for c, counts, low, own in zip(st.constraints, st.counts, st.minimums, st.self_match):
            value = node.labels.get(c.topology_key)
            if value is None:
                return unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH, plugin=NAME)
            if counts.get(value, 0) + own - low > c.max_skew:
                return unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH, plugin=NAME)
        return None

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                node: NodeInfo) -> Status | None:
        self._adjust(state, pod, added, node, 1)
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                   node: NodeInfo) -> Status | None:
        self._adjust(state, pod, removed, node, -1)
        return None

    @staticmethod
    def _adjust(state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo,
                delta: int) -> None:
        st: _State | None = state.get(NAME)
        if st is None or other.namespace != pod.namespace:
            return
        for c, counts in zip(st.constraints, st.counts):
            value = node.labels.get(c.topology_key)
            if value in counts and c.selector.matches(other.labels):
                counts[value] += delta
        st.minimums = [0 if len(cnt) < c.min_domains or not cnt else min(cnt.values())
                       for c, cnt in zip(st.constraints, st.counts)]

    # -- scoring -------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        constraints = parse_constraints(pod, "ScheduleAnyway")
        if not constraints:
            return SKIP
        nodes_ok = self._eligible_nodes(pod, constraints)
        counts = [domain_counts(self.handle, pod, c, nodes_ok) for c in constraints]
        weights = [math.log(len(cnt) + 2) for cnt in counts]
        state[NAME + "/score"] = (constraints, counts, weights)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        constraints, counts, weights = state[NAME + "/score"]
        total = 0.0
        for c, cnt, weight in zip(constraints, counts, weights):
            value = node.labels.get(c.topology_key)
            if value is None:
                return -1  # ignored node: scores lowest after normalisation
            total += cnt.get(value, 0) * weight + (c.max_skew - 1)
        return round(total)

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        valid = [s for s in scores.values() if s >= 0]
        if not valid:
            return
        low, high = min(valid), max(valid)
        for name, value in scores.items():
            if value < 0:
                scores[name] = 0
            elif high == 0:
                scores[name] = MAX_NODE_SCORE
            else:
                scores[name] = MAX_NODE_SCORE * (high + low - value) // high


def new(args: dict[str, Any], handle: Any) -> PodTopologySpread:
    return PodTopologySpread(handle)
