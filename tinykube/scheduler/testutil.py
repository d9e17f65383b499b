"""Builders for scheduler tests and benchmarks: pods, nodes and a ready-made handle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinykube.scheduler.cache import SchedulerCache
from tinykube.scheduler.config import default_profile
from tinykube.scheduler.framework import CycleState
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo
from tinykube.scheduler.registry import REGISTRY
from tinykube.scheduler.runtime import Framework, Services

Object = dict[str, Any]


def make_pod(name: str = "p", namespace: str = "default", *, cpu: str | None = None,
             memory: str | None = None, extra: dict[str, str] | None = None,
             labels: dict[str, str] | None = None, node: str = "", priority: int = 0,
             **spec: Any) -> Object:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    requests.update(extra or {})
    container: Object = {"name": "c", "image": spec.pop("image", "busybox")}
    if requests:
        container["resources"] = {"requests": requests}
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    body: Object = {"containers": [container], "priority": priority, **spec}
    if node:
        body["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                         "labels": labels or {}},
            "spec": body}


def make_node(name: str, *, cpu: str = "4", memory: str = "16Gi", pods: int = 110,
              labels: dict[str, str] | None = None, taints: list[Object] | None = None,
              unschedulable: bool = False, extra: dict[str, str] | None = None,
              images: list[Object] | None = None) -> Object:
    alloc = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi",
             **(extra or {})}
    spec: Object = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}",
                         "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec,
            "status": {"capacity": alloc, "allocatable": alloc, "images": images or []}}


def node_info(node: Object, *pods: Object) -> NodeInfo:
    info = NodeInfo(node["metadata"]["name"])
    info.set_node(node)
    for pod in pods:
        info.add_pod(PodInfo(pod))
    return info


@dataclass
class FakeRecorder:
    events: list[tuple[str, str, str, str]] = field(default_factory=list)

    def event(self, obj: Object, type: str, reason: str, message: str) -> None:  # noqa: A002
        self.events.append((obj["metadata"]["name"], type, reason, message))


class Harness:
    """A default-profile framework over an in-memory cache, for pure scheduling tests."""

    def __init__(self, nodes: list[Object] = (), pods: list[Object] = ()) -> None:
        self.cache = SchedulerCache()
        self.spawned: list[Any] = []
        self.recorder = FakeRecorder()
        for node in nodes:
            self.cache.add_node(node)
        for pod in pods:
            self.cache.add_pod(pod)
        services = Services(None, self.cache, self.recorder, self._spawn)
        self.framework = Framework(default_profile(), services, REGISTRY)

    def _spawn(self, coro: Any, name: str) -> None:
        coro.close()  # pure tests never run the asynchronous side
        self.spawned.append(name)

    def plugin(self, name: str) -> Any:
        return self.framework.plugins[name]

    def schedule(self, pod: Object, explain: bool = False):
        state = CycleState()
        result, _ = self.framework.find_nodes(state, PodInfo(pod), 0, explain)
        return result, state
