"""NodeAffinity: ``spec.nodeSelector`` and required node affinity filter nodes; preferred
node affinity terms add their weight to the nodes they match."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinykube.scheduler.framework import (SKIP, CycleState, PreFilterResult, Status,
                                          default_normalize, unresolvable)
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "NodeAffinity"
ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"

# (labels, node name) -> matches?
Matcher = Callable[[dict[str, str], str], bool]


def _expression(expr: dict[str, Any], field: bool) -> Matcher:
    """One NodeSelectorRequirement as a closure (label lookups inlined for speed)."""
    key = expr.get("key") or ""
    op = expr.get("operator")
    values = frozenset(str(v) for v in expr.get("values") or ())
    if field:
        if key != "metadata.name" or op not in ("In", "NotIn"):
            return lambda labels, name: False
        if op == "In":
            return lambda labels, name: name in values
        return lambda labels, name: name not in values
    if op == "In":
        return lambda labels, name: labels.get(key) in values
    if op == "NotIn":
        return lambda labels, name: labels.get(key) not in values
    if op == "Exists":
        return lambda labels, name: key in labels
    if op == "DoesNotExist":
        return lambda labels, name: key not in labels
    if op in ("Gt", "Lt") and len(values) == 1:
        try:
            bound = int(next(iter(values)))
        except ValueError:
            return lambda labels, name: False

        def compare(labels: dict[str, str], name: str) -> bool:
            try:
                have = int(labels[key])
            except (KeyError, ValueError):
                return False
            return have > bound if op == "Gt" else have < bound
        return compare
    return lambda labels, name: False


def compile_term(term: dict[str, Any]) -> Matcher:
    """A NodeSelectorTerm: all its expressions AND; an empty term matches nothing."""
    checks = [_expression(e, False) for e in term.get("matchExpressions") or ()]
    checks += [_expression(e, True) for e in term.get("matchFields") or ()]
    if not checks:
        return lambda labels, name: False
    if len(checks) == 1:
        return checks[0]
    return lambda labels, name: all(c(labels, name) for c in checks)


def compile_required(pod: PodInfo) -> Matcher | None:
    """nodeSelector AND (any required term); None when the pod constrains nothing."""
    selector = dict(pod.spec.get("nodeSelector") or {})
    required = (((pod.spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    terms = [compile_term(t) for t in (required or {}).get("nodeSelectorTerms") or ()]
    if not selector and required is None:
        return None
    if not selector and len(terms) == 1:
        return terms[0]  # the common case: one term, no nodeSelector
    items = list(selector.items())

    def matches(labels: dict[str, str], name: str) -> bool:
        for k, v in items:
            if labels.get(k) != v:
                return False
        if required is None:
            return True
        for term in terms:
            if term(labels, name):
                return True
        return False
    return matches


def node_names_from_fields(pod: PodInfo) -> set[str] | None:
    """Names the required terms pin with ``matchFields metadata.name In`` (None = any)."""
    required = (((pod.spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution")) or {}
    names: set[str] = set()
    for term in required.get("nodeSelectorTerms") or ():
        pinned = [e for e in term.get("matchFields") or ()
                  if e.get("key") == "metadata.name" and e.get("operator") == "In"]
        if not pinned:
            return None
        names.update(str(v) for e in pinned for v in e.get("values") or ())
    return names or None


class NodeAffinity:
    name = NAME

    def __init__(self, added_affinity: dict[str, Any] | None = None) -> None:
        # args.addedAffinity: scheduler-enforced required affinity for every pod
        required = (added_affinity or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        self.enforced = None
        if required:
            terms = [compile_term(t) for t in required.get("nodeSelectorTerms") or ()]
            self.enforced = lambda labels, name: any(t(labels, name) for t in terms)

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        matcher = compile_required(pod)
        if matcher is None and self.enforced is None:
            return None, SKIP
        state[NAME] = matcher
        names = node_names_from_fields(pod)
        return (PreFilterResult(names) if names else None), None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if self.enforced is not None and not self.enforced(node.labels, node.name):
            return unresolvable(ERR_REASON_ENFORCED, plugin=NAME)
        matcher = state.get(NAME)
        if matcher is not None and not matcher(node.labels, node.name):
            return unresolvable(ERR_REASON_POD, plugin=NAME)
        return None

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        preferred = (((pod.spec.get("affinity") or {}).get("nodeAffinity") or {})
                     .get("preferredDuringSchedulingIgnoredDuringExecution")) or ()
        compiled = [(int(p.get("weight") or 0), compile_term(p.get("preference") or {}))
                    for p in preferred if p.get("weight")]
        if not compiled:
            return SKIP
        state[NAME + "/preferred"] = compiled
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        return sum(w for w, term in state[NAME + "/preferred"] if term(node.labels, node.name))

    def normalize_score(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        default_normalize(scores)


def new(args: dict[str, Any], handle: Any) -> NodeAffinity:
    return NodeAffinity(args.get("addedAffinity"))
