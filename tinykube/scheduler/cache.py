"""The scheduler cache: NodeInfos built from the node and pod informers plus assumed pods.

A pod is *assumed* onto its node as soon as the scheduling cycle picks the node, before the
binding reaches the API server, so the next cycle already counts its resources. When the
informer later reports the pod bound, the assumed copy is replaced by the real one; if the
binding fails the pod is *forgotten* and its resources are released. The scheduling cycle
runs without awaiting, so it reads the live cache instead of a snapshot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tinykube.api import meta
from tinykube.api.selectors import DOUBLE_EQUALS, EQUALS, IN, LabelSelector
from tinykube.scheduler.nodeinfo import AffinityTerm, NodeInfo, PodInfo

log = logging.getLogger(__name__)
Object = dict[str, Any]


TermKey = tuple[str, frozenset[str], str, str]


def term_key(term: AffinityTerm) -> TermKey:
    """Terms that select the same pods in the same scope over the same topology."""
    return (str(term.selector) + ("!" if term.selector.nothing else ""), term.namespaces,
            "" if term.namespace_selector is None else str(term.namespace_selector),
            term.topology_key)


@dataclass
class AntiAffinityGroup:
    """Existing pods sharing one required anti-affinity term, counted per node."""

    term: AffinityTerm
    nodes: dict[str, int]


@dataclass
class _PodState:
    info: PodInfo
    node: str
    assumed: bool
    binding_finished: bool = False


class SchedulerCache:
    """Nodes (in a stable order for round-robin sampling) and the pods placed on them."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self._order: list[NodeInfo] = []
        self._order_dirty = False
        self._pods: dict[str, _PodState] = {}
        self.namespace_labels: dict[str, dict[str, str]] = {}
        # Pods anywhere in the cluster whose terms score others (required affinity, any
        # preferred term) and pods with required anti-affinity, for InterPodAffinity.
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        # (label, value) -> pods carrying it, to find the pods a selector matches quickly
        self._label_index: dict[tuple[str, str], dict[str, PodInfo]] = {}
        self._all_pods: dict[str, PodInfo] = {}
        self.anti_affinity_groups: dict[TermKey, AntiAffinityGroup] = {}
        # Nodes with taints / cordoned, so filters can skip a cycle when there are none.
        self.tainted_nodes: set[str] = set()
        self.unschedulable_nodes: set[str] = set()
        self.nodes_with_images: set[str] = set()

    # -- nodes ---------------------------------------------------------------------------

    def node_list(self) -> list[NodeInfo]:
        """Nodes with a Node object, in insertion order (ghosts holding pods excluded)."""
        if self._order_dirty:
            self._order = [n for n in self.nodes.values() if n.node is not None]
            self._order_dirty = False
        return self._order

    def add_node(self, node: Object) -> NodeInfo:
        name = meta.name(node)
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name)
        was_ghost = info.node is None
        info.set_node(node)
        (self.tainted_nodes.add if info.taints else self.tainted_nodes.discard)(name)
        (self.unschedulable_nodes.add if info.unschedulable
         else self.unschedulable_nodes.discard)(name)
        (self.nodes_with_images.add if info.images else self.nodes_with_images.discard)(name)
        if was_ghost:
            self._order_dirty = True
        return info

    update_node = add_node

    def remove_node(self, node: Object) -> None:
        name = meta.name(node)
        info = self.nodes.get(name)
        if info is None:
            return
        self.tainted_nodes.discard(name)
        self.unschedulable_nodes.discard(name)
        self.nodes_with_images.discard(name)
        if info.pods:
            info.node = None  # keep the pods' accounting until they are deleted too
        else:
            del self.nodes[name]
        self._order_dirty = True

    # -- pods ----------------------------------------------------------------------------

    def _place(self, info: PodInfo, node: str) -> None:
        ni = self.nodes.get(node)
        if ni is None:
            ni = self.nodes[node] = NodeInfo(node)
        ni.add_pod(info)
        self._all_pods[info.key] = info
        for label in info.labels.items():
            self._label_index.setdefault(label, {})[info.key] = info
        if info.required_affinity or info.preferred_affinity or info.preferred_anti_affinity:
            self.pods_with_affinity[info.key] = info
        if info.required_anti_affinity:
            self.pods_with_required_anti_affinity[info.key] = info
            for term in info.required_anti_affinity:
                group = self.anti_affinity_groups.setdefault(
                    term_key(term), AntiAffinityGroup(term, {}))
                group.nodes[node] = group.nodes.get(node, 0) + 1

    def _unplace(self, key: str, node: str) -> None:
        ni = self.nodes.get(node)
        if ni is not None:
            ni.remove_pod(key)
            if ni.node is None and not ni.pods:
                del self.nodes[node]
        info = self._all_pods.pop(key, None)
        if info is not None:
            for label in info.labels.items():
                holders = self._label_index.get(label)
                if holders is not None:
                    holders.pop(key, None)
                    if not holders:
                        del self._label_index[label]
            for term in info.required_anti_affinity:
                tkey = term_key(term)
                group = self.anti_affinity_groups.get(tkey)
                if group is None:
                    continue
                left = group.nodes.get(node, 0) - 1
                if left > 0:
                    group.nodes[node] = left
                else:
                    group.nodes.pop(node, None)
                    if not group.nodes:
                        del self.anti_affinity_groups[tkey]
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)

    def assume_pod(self, info: PodInfo, node: str) -> None:
        """Count ``info`` on ``node`` before its binding is confirmed."""
        if info.key in self._pods:
            raise ValueError(f"pod {info.key} is already in the cache")
        info.node_name = node
        self._place(info, node)
        self._pods[info.key] = _PodState(info, node, assumed=True)

    def finish_binding(self, key: str) -> None:
        state = self._pods.get(key)
        if state is not None and state.assumed:
            state.binding_finished = True

    def forget_pod(self, key: str) -> None:
        """Release an assumed pod whose binding failed."""
        state = self._pods.get(key)
        if state is None or not state.assumed:
            return
        self._unplace(key, state.node)
        del self._pods[key]

    def is_assumed(self, key: str) -> bool:
        state = self._pods.get(key)
        return state is not None and state.assumed

    def has_pod(self, key: str) -> bool:
        return key in self._pods

    def add_pod(self, pod: Object) -> None:
        """A bound pod from the informer (confirms an assumed one)."""
        state = self._pods.get(meta.key(pod))
        info = state.info.with_object(pod) if state is not None else PodInfo(pod)
        if state is not None:
            self._unplace(info.key, state.node)
        self._place(info, info.node_name)
        self._pods[info.key] = _PodState(info, info.node_name, assumed=False)

    def update_pod(self, old: Object, new: Object) -> None:
        self.add_pod(new)

    def remove_pod(self, pod: Object) -> None:
        key = meta.key(pod)
        state = self._pods.pop(key, None)
        if state is not None:
            self._unplace(key, state.node)

    def pods_matching(self, selector: LabelSelector,
                      namespaces: frozenset[str] | None = None) -> list[PodInfo]:
        """Placed pods whose labels match ``selector`` (and, if given, in ``namespaces``)."""
        if selector.nothing:
            return []
        candidates: dict[str, PodInfo] | None = None
        for req in selector.requirements:
            if req.op not in (IN, EQUALS, DOUBLE_EQUALS):
                continue
            if len(req.values) == 1:
                found = self._label_index.get((req.key, req.values[0]), {})
            else:
                found = {}
                for value in req.values:
                    found.update(self._label_index.get((req.key, value), {}))
            if candidates is None or len(found) < len(candidates):
                candidates = found
        pool = self._all_pods if candidates is None else candidates
        return [p for p in pool.values()
                if (namespaces is None or p.namespace in namespaces)
                and selector.matches(p.labels)]

    def pod_count(self) -> int:
        return len(self._pods)

    def pod_infos(self) -> list[PodInfo]:
        return [s.info for s in self._pods.values()]

    def set_namespace(self, ns: Object) -> None:
        self.namespace_labels[meta.name(ns)] = meta.labels(ns)

    def remove_namespace(self, ns: Object) -> None:
        self.namespace_labels.pop(meta.name(ns), None)
