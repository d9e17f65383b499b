"""InterPodAffinity: required pod affinity / anti-affinity by topology domain, existing
pods' anti-affinity against the incoming pod, and preferred terms as scores.

PreFilter counts, per topology domain (``topologyKey`` = node label value), the existing
pods each term matches; Filter then only looks up the node's domains. The cache keeps
existing pods' required anti-affinity terms grouped and counted per node, so the cost of
a cycle grows with the number of distinct terms, not of pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinykube.scheduler.framework import (MAX_NODE_SCORE, SKIP, CycleState, PreFilterResult,
                                          Status, unresolvable, unschedulable)
from tinykube.scheduler.nodeinfo import AffinityTerm, NodeInfo, PodInfo

NAME = "InterPodAffinity"
ERR_REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_REASON_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
DEFAULT_HARD_POD_AFFINITY_WEIGHT = 1

Domain = tuple[str, str]  # (topology key, value)


EXISTING_ANTI_AFFINITY_STATUS = unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY, plugin=NAME)
AFFINITY_STATUS = unresolvable(ERR_REASON_AFFINITY, plugin=NAME)
ANTI_AFFINITY_STATUS = unschedulable(ERR_REASON_ANTI_AFFINITY, plugin=NAME)


@dataclass
class PreFilterState:
    existing_anti: dict[Domain, int] = field(default_factory=dict)
    affinity_counts: list[dict[str, int]] = field(default_factory=list)
    anti_affinity_counts: list[dict[str, int]] = field(default_factory=list)
    affinity_matches_nothing: bool = False
    pod_matches_own_affinity: bool = False
    # Derived for Filter: (topology key, forbidden values) pairs.
    existing_checks: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    anti_checks: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    def rebuild(self, anti_keys: list[str]) -> None:
        """Recompute the forbidden domains from the counts (after PreFilter or a what-if)."""
        by_key: dict[str, set[str]] = {}
        for (key, value), count in self.existing_anti.items():
            if count > 0:
                by_key.setdefault(key, set()).add(value)
        self.existing_checks = [(k, frozenset(v)) for k, v in by_key.items()]
        self.anti_checks = [(key, frozenset(v for v, n in counts.items() if n > 0))
                            for key, counts in zip(anti_keys, self.anti_affinity_counts)]

    def clone(self) -> PreFilterState:
        return PreFilterState(dict(self.existing_anti),
                              [dict(c) for c in self.affinity_counts],
                              [dict(c) for c in self.anti_affinity_counts],
                              self.affinity_matches_nothing, self.pod_matches_own_affinity,
                              list(self.existing_checks), list(self.anti_checks))


def _matching(handle: Any, term: AffinityTerm) -> list[PodInfo]:
    cache = handle.cache
    if term.namespace_selector is None:
        return cache.pods_matching(term.selector, term.namespaces)
    return [p for p in cache.pods_matching(term.selector)
            if term.matches(p, cache.namespace_labels)]


def count_by_domain(handle: Any, term: AffinityTerm) -> dict[str, int]:
    """Existing pods matching ``term`` per value of its topology key."""
    counts: dict[str, int] = {}
    nodes = handle.cache.nodes
    key = term.topology_key
    for other in _matching(handle, term):
        ni = nodes.get(other.node_name)
        value = ni.labels.get(key) if ni is not None else None
        if value is not None:
            counts[value] = counts.get(value, 0) + 1
    return counts


def existing_anti_affinity(handle: Any, pod: PodInfo) -> dict[Domain, int]:
    """Domains where some existing pod's required anti-affinity term matches ``pod``."""
    cache = handle.cache
    out: dict[Domain, int] = {}
    for group in cache.anti_affinity_groups.values():
        if not group.term.matches(pod, cache.namespace_labels):
            continue
        key = group.term.topology_key
        for node_name, count in group.nodes.items():
            ni = cache.nodes.get(node_name)
            value = ni.labels.get(key) if ni is not None else None
            if value is not None:
                out[(key, value)] = out.get((key, value), 0) + count
    return out


class InterPodAffinity:
    name = NAME

    def __init__(self, handle: Any, hard_pod_affinity_weight: int = 1) -> None:
        self.handle = handle
        self.hard_weight = hard_pod_affinity_weight

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        existing = existing_anti_affinity(self.handle, pod)
        if not existing and not pod.required_affinity and not pod.required_anti_affinity:
            return None, SKIP
        st = PreFilterState(existing)
        st.affinity_counts = [count_by_domain(self.handle, t) for t in pod.required_affinity]
        st.anti_affinity_counts = [count_by_domain(self.handle, t)
                                   for t in pod.required_anti_affinity]
        st.affinity_matches_nothing = not any(st.affinity_counts)
        ns_labels = self.handle.cache.namespace_labels
        st.pod_matches_own_affinity = all(t.matches(pod, ns_labels)
                                          for t in pod.required_affinity)
        st.rebuild([t.topology_key for t in pod.required_anti_affinity])
        state[NAME] = st
        return None, None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        st: PreFilterState = state[NAME]
        labels = node.labels
        for key, forbidden in st.existing_checks:
            if labels.get(key) in forbidden:
                return EXISTING_ANTI_AFFINITY_STATUS
        if pod.required_affinity and not self._affinity_ok(st, pod, labels):
            return AFFINITY_STATUS
        for key, forbidden in st.anti_checks:
            if labels.get(key) in forbidden:
                return ANTI_AFFINITY_STATUS
        return None

    @staticmethod
    def _affinity_ok(st: PreFilterState, pod: PodInfo, labels: dict[str, str]) -> bool:
        all_met = True
        for term, counts in zip(pod.required_affinity, st.affinity_counts):
            value = labels.get(term.topology_key)
            if value is None:
                return False  # the node is in no domain of this term
            if counts.get(value, 0) <= 0:
                all_met = False
        if all_met:
            return True
        # The first pod of a group that selects itself may go anywhere with the keys.
        return st.affinity_matches_nothing and st.pod_matches_own_affinity

    # -- scoring -------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        cache = self.handle.cache
        has_preferred = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if not has_preferred and not cache.pods_with_affinity:
            return SKIP
        scores: dict[Domain, int] = {}

        def bump(term: AffinityTerm, node_name: str, weight: int) -> None:
            ni = cache.nodes.get(node_name)
            value = ni.labels.get(term.topology_key) if ni is not None else None
            if value is not None:
                domain = (term.topology_key, value)
                scores[domain] = scores.get(domain, 0) + weight

        for term in pod.preferred_affinity:
            for other in _matching(self.handle, term):
                bump(term, other.node_name, term.weight)
        for term in pod.preferred_anti_affinity:
            for other in _matching(self.handle, term):
                bump(term, other.node_name, -term.weight)
        ns_labels = cache.namespace_labels
        for other in cache.pods_with_affinity.values():
            for term in other.required_affinity:
                if self.hard_weight and term.matches(pod, ns_labels):
                    bump(term, other.node_name, self.hard_weight)
            for term in other.preferred_affinity:
                if term.matches(pod, ns_labels):
                    bump(term, other.node_name, term.weight)
            for term in other.preferred_anti_affinity:
                if term.matches(pod, ns_labels):
                    bump(term, other.node_name, -term.weight)
        if not scores:
            return SKIP
        state[NAME + "/score"] = (scores, tuple({k for k, _ in scores}))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores, keys = state[NAME + "/score"]
        total = 0
        for key in keys:
            value = node.labels.get(key)
            if value is not None:
                total += scores.get((key, value), 0)
        return total

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        if not scores:
            return
        low, high = min(scores.values()), max(scores.values())
        spread = high - low
        for name, value in scores.items():
            scores[name] = MAX_NODE_SCORE * (value - low) // spread if spread > 0 else 0

    # -- preemption what-ifs -------------------------------------------------------------

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                node: NodeInfo) -> Status | None:
        """Count ``added`` as if it were on ``node`` (preemption reprieving a victim)."""
        self._adjust(state, pod, added, node, 1)
        return None

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                   node: NodeInfo) -> Status | None:
        """Forget ``removed``'s contribution to the counts (a preemption victim)."""
        self._adjust(state, pod, removed, node, -1)
        return None

    def _adjust(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo,
                delta: int) -> None:
        st: PreFilterState | None = state.get(NAME)
        if st is None:
            return
        ns_labels = self.handle.cache.namespace_labels
        for term in other.required_anti_affinity:
            value = node.labels.get(term.topology_key)
            if value is not None and term.matches(pod, ns_labels):
                domain = (term.topology_key, value)
                st.existing_anti[domain] = st.existing_anti.get(domain, 0) + delta
        for terms, counts_list in ((pod.required_affinity, st.affinity_counts),
                                   (pod.required_anti_affinity, st.anti_affinity_counts)):
            for term, counts in zip(terms, counts_list):
                value = node.labels.get(term.topology_key)
                if value is not None and term.matches(other, ns_labels):
                    counts[value] = counts.get(value, 0) + delta
        st.rebuild([t.topology_key for t in pod.required_anti_affinity])


def new(args: dict[str, Any], handle: Any) -> InterPodAffinity:
    return InterPodAffinity(handle, int(args.get("hardPodAffinityWeight",
                                                 DEFAULT_HARD_POD_AFFINITY_WEIGHT)))
