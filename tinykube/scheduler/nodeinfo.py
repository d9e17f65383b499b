"""What the scheduler knows about nodes and pods, pre-digested for the hot loop.

``PodInfo`` parses a pod once (requests as integers, affinity terms with compiled
selectors); ``NodeInfo`` keeps per-node aggregates (requested resources, pods with
affinity, used host ports, images) updated incrementally as pods are added and removed,
so filters and scores are a few attribute reads per node. Units follow upstream's
``framework.Resource``: milli-CPU, bytes, pod counts; extended resources as integers.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field
from typing import Any

from tinykube.api import meta, pods
from tinykube.api.quantity import parse_quantity, to_resource_list
from tinykube.api.selectors import LabelSelector

Object = dict[str, Any]

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
HOSTNAME_LABEL = "kubernetes.io/hostname"


@functools.lru_cache(maxsize=4096)
def quantity_units(name: str, value: str | int | float) -> int:
    """A quantity in the scheduler's integer units (milli-CPU, bytes, counts); cached
    because the same few request strings ("100m", "128Mi") recur across thousands of pods."""
    parsed = parse_quantity(value)
    return math.ceil(parsed * 1000) if name == CPU else math.ceil(parsed)


def _simple_requests(pod: Object) -> tuple[Resource, int, int] | None:
    """Requests, non-zero cpu and memory of a pod without init containers or overhead
    (the common case), computed without exact-fraction arithmetic; None otherwise."""
    spec = pods.spec(pod)
    if spec.get("initContainers") or spec.get("overhead"):
        return None
    total = Resource(pods_=1)
    nz_cpu = nz_mem = 0
    for c in spec.get("containers") or ():
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        cpu = mem = 0
        for name, value in merged.items():
            units = quantity_units(name, value)
            if name == CPU:
                cpu = units
            elif name == MEMORY:
                mem = units
            elif name == EPHEMERAL:
                total.ephemeral_storage += units
            elif name != PODS and units:
                total.scalars[name] = total.scalars.get(name, 0) + units
        total.milli_cpu += cpu
        total.memory += mem
        nz_cpu += cpu if CPU in merged else pods.DEFAULT_MILLI_CPU_REQUEST
        nz_mem += mem if MEMORY in merged else pods.DEFAULT_MEMORY_REQUEST
    return total, nz_cpu, nz_mem


class Resource:
    """A resource vector: cpu (milli), memory, ephemeral-storage, pods and scalars."""

    __slots__ = ("milli_cpu", "memory", "ephemeral_storage", "pods", "scalars")

    def __init__(self, milli_cpu: int = 0, memory: int = 0, ephemeral_storage: int = 0,
                 pods_: int = 0, scalars: dict[str, int] | None = None) -> None:
        self.milli_cpu = milli_cpu
        self.memory = memory
        self.ephemeral_storage = ephemeral_storage
        self.pods = pods_
        self.scalars = scalars or {}

    @classmethod
    def from_list(cls, resources: dict[str, Any] | None) -> Resource:
        """From a ``{name: quantity}`` map (strings or parsed values)."""
        parsed = to_resource_list(resources) if resources else {}
        out = cls()
        for name, value in parsed.items():
            if name == CPU:
                out.milli_cpu = math.ceil(value * 1000)
            elif name == MEMORY:
                out.memory = math.ceil(value)
            elif name == EPHEMERAL:
                out.ephemeral_storage = math.ceil(value)
            elif name == PODS:
                out.pods = math.ceil(value)
            elif value:
                out.scalars[name] = math.ceil(value)
        return out

    def add(self, other: Resource, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        self.pods += sign * other.pods
        for name, value in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + sign * value

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL:
            return self.ephemeral_storage
        if name == PODS:
            return self.pods
        return self.scalars.get(name, 0)

    def as_dict(self) -> dict[str, int]:
        out = {CPU: self.milli_cpu, MEMORY: self.memory, EPHEMERAL: self.ephemeral_storage,
               PODS: self.pods}
        out.update(self.scalars)
        return out

    def clone(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage, self.pods,
                        dict(self.scalars))


@dataclass
class AffinityTerm:
    """A (weighted) pod (anti-)affinity term with its selector compiled."""

    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None
    topology_key: str
    weight: int = 0

    def matches(self, pod: PodInfo, namespace_labels: dict[str, dict[str, str]]) -> bool:
        """Does ``pod`` fall under this term (namespace scope, then labels)?"""
        if pod.namespace not in self.namespaces:
            sel = self.namespace_selector
            if sel is None or not sel.matches(namespace_labels.get(pod.namespace, {})):
                return False
        return self.selector.matches(pod.labels)


def _term(raw: Object, owner_ns: str, weight: int = 0) -> AffinityTerm:
    namespaces = frozenset(raw.get("namespaces") or ())
    ns_sel_raw = raw.get("namespaceSelector")
    ns_sel = LabelSelector.from_dict(ns_sel_raw) if ns_sel_raw is not None else None
    if not namespaces and ns_sel is None:
        namespaces = frozenset((owner_ns,))  # no scope given: the pod's own namespace
    return AffinityTerm(LabelSelector.from_dict(raw.get("labelSelector")), namespaces, ns_sel,
                        raw.get("topologyKey") or "", weight)


def _terms(affinity: Object, kind: str, owner_ns: str) -> tuple[list[AffinityTerm],
                                                                list[AffinityTerm]]:
    section = affinity.get(kind) or {}
    required = [_term(t, owner_ns) for t in
                section.get("requiredDuringSchedulingIgnoredDuringExecution") or ()]
    preferred = [_term(w.get("podAffinityTerm") or {}, owner_ns, int(w.get("weight") or 0))
                 for w in section.get("preferredDuringSchedulingIgnoredDuringExecution") or ()]
    return required, preferred


class PodInfo:
    """A pod parsed once for scheduling."""

    __slots__ = ("pod", "key", "namespace", "name", "uid", "labels", "priority", "requests",
                 "non_zero_cpu", "non_zero_mem", "required_affinity", "preferred_affinity",
                 "required_anti_affinity", "preferred_anti_affinity", "host_ports",
                 "node_name")

    def __init__(self, pod: Object) -> None:
        self.pod = pod
        self.key = meta.key(pod)
        self.namespace = meta.namespace(pod)
        self.name = meta.name(pod)
        self.uid = meta.uid(pod)
        self.labels = meta.labels(pod)
        spec = pods.spec(pod)
        self.priority = int(spec.get("priority") or 0)
        self.node_name = spec.get("nodeName") or ""
        simple = _simple_requests(pod)
        if simple is not None:
            self.requests, self.non_zero_cpu, self.non_zero_mem = simple
        else:
            self.requests = Resource.from_list(pods.pod_requests(pod))
            self.non_zero_cpu, self.non_zero_mem = pods.non_zero_requests(pod)
        affinity = spec.get("affinity") or {}
        self.required_affinity, self.preferred_affinity = _terms(
            affinity, "podAffinity", self.namespace)
        self.required_anti_affinity, self.preferred_anti_affinity = _terms(
            affinity, "podAntiAffinity", self.namespace)
        self.host_ports = host_ports(pod)

    @property
    def spec(self) -> Object:
        return pods.spec(self.pod)

    def on_node(self, node: str) -> PodInfo:
        """A copy bound to ``node`` (the assumed pod), reusing the parsed fields."""
        clone = copy.copy(self)
        clone.pod = {**self.pod, "spec": {**pods.spec(self.pod), "nodeName": node}}
        clone.node_name = node
        return clone

    def with_object(self, pod: Object) -> PodInfo:
        """This parse for a newer version of the same pod whose spec and labels are
        unchanged (a status or annotation update), else a fresh parse."""
        if pods.spec(pod) == pods.spec(self.pod) and meta.labels(pod) == self.labels:
            clone = copy.copy(self)
            clone.pod = pod
            clone.node_name = pods.spec(pod).get("nodeName") or ""
            return clone
        return PodInfo(pod)

    @property
    def has_affinity(self) -> bool:
        return bool(self.required_affinity or self.preferred_affinity
                    or self.required_anti_affinity or self.preferred_anti_affinity)


def host_ports(pod: Object) -> frozenset[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) triples the pod's containers claim."""
    out = set()
    for c in pods.containers(pod):
        for port in c.get("ports") or ():
            if port.get("hostPort"):
                out.add((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP",
                         int(port["hostPort"])))
    return frozenset(out)


@dataclass(eq=False)
class NodeInfo:
    """One node and the pods on it (bound or assumed), with running aggregates."""

    name: str
    node: Object | None = None
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Object] = field(default_factory=list)
    unschedulable: bool = False
    allocatable: Resource = field(default_factory=Resource)
    requested: Resource = field(default_factory=Resource)
    non_zero_cpu: int = 0
    non_zero_mem: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_affinity: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_required_anti_affinity: dict[str, PodInfo] = field(default_factory=dict)
    used_ports: dict[tuple[str, str, int], int] = field(default_factory=dict)
    images: dict[str, int] = field(default_factory=dict)
    generation: int = 0

    def set_node(self, node: Object) -> None:
        self.node = node
        self.labels = meta.labels(node)
        spec = node.get("spec") or {}
        self.taints = list(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        status = node.get("status") or {}
        self.allocatable = Resource.from_list(status.get("allocatable") or status.get("capacity"))
        self.images = {}
        for image in status.get("images") or ():
            for name in image.get("names") or ():
                self.images[name] = int(image.get("sizeBytes") or 0)
        self.generation += 1

    def add_pod(self, info: PodInfo) -> None:
        if info.key in self.pods:
            self.remove_pod(info.key)
        self.pods[info.key] = info
        self.requested.add(info.requests)
        self.non_zero_cpu += info.non_zero_cpu
        self.non_zero_mem += info.non_zero_mem
        if info.has_affinity:
            self.pods_with_affinity[info.key] = info
        if info.required_anti_affinity:
            self.pods_with_required_anti_affinity[info.key] = info
        for port in info.host_ports:
            self.used_ports[port] = self.used_ports.get(port, 0) + 1
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        if info is None:
            return None
        self.requested.add(info.requests, -1)
        self.non_zero_cpu -= info.non_zero_cpu
        self.non_zero_mem -= info.non_zero_mem
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        for port in info.host_ports:
            left = self.used_ports.get(port, 0) - 1
            if left > 0:
                self.used_ports[port] = left
            else:
                self.used_ports.pop(port, None)
        self.generation += 1
        return info

    def clone(self) -> NodeInfo:
        """A copy whose pod set can be changed freely (preemption's what-if)."""
        copy = NodeInfo(self.name, self.node, self.labels, self.taints, self.unschedulable,
                        self.allocatable, self.requested.clone(), self.non_zero_cpu,
                        self.non_zero_mem, dict(self.pods), dict(self.pods_with_affinity),
                        dict(self.pods_with_required_anti_affinity), dict(self.used_ports),
                        self.images, self.generation)
        return copy
