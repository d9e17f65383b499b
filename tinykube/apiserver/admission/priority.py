"""Priority: a pod's ``priorityClassName`` becomes its ``spec.priority`` (and preemption
policy); without a name the global default class applies, else priority 0."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinykube.api import errors
from tinykube.api.kinds import lookup
from tinykube.apiserver.admission import Attributes

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

PRIORITY_CLASSES = lookup("scheduling.k8s.io", "v1", "priorityclasses")
PODS = lookup("", "v1", "pods")
# Built in, so they resolve even before bootstrap has written them.
SYSTEM_CLASSES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}


class Priority:
    name = "Priority"

    def __init__(self, server: "APIServer"):
        self.server = server

    async def admit(self, attrs: Attributes) -> None:
        pod = attrs.created_pod()
        if pod is None:
            return
        spec = pod.setdefault("spec", {})
        class_name = spec.get("priorityClassName") or ""
        if class_name:
            pc = self._find(class_name)
            if pc is None:
                if class_name not in SYSTEM_CLASSES:
                    raise errors.forbidden(PODS, attrs.name,
                                           f"no PriorityClass with name {class_name} was found")
                value, policy = SYSTEM_CLASSES[class_name], "PreemptLowerPriority"
            else:
                value = int(pc.get("value") or 0)
                policy = pc.get("preemptionPolicy") or "PreemptLowerPriority"
        else:
            default = self._global_default()
            if default is None:
                value, policy = 0, "PreemptLowerPriority"
            else:
                spec["priorityClassName"] = default["metadata"]["name"]
                value = int(default.get("value") or 0)
                policy = default.get("preemptionPolicy") or "PreemptLowerPriority"
        if spec.get("priority") not in (None, value) and spec.get("priority") != 0:
            raise errors.forbidden(PODS, attrs.name, "the integer value of priority "
                                   f"({spec['priority']}) must not be provided in pod spec; "
                                   "priority admission controller computed "
                                   f"{value} from the given PriorityClass name")
        spec["priority"] = value
        spec.setdefault("preemptionPolicy", policy)

    def _find(self, name: str) -> dict | None:
        cached = self.server.watch_cache.get(PRIORITY_CLASSES, "", name)
        return cached.obj if cached is not None else None

    def _global_default(self) -> dict | None:
        defaults = [c.obj for c in self.server.watch_cache.list(PRIORITY_CLASSES)
                    if c.obj.get("globalDefault")]
        if not defaults:
            return None
        return min(defaults, key=lambda pc: int(pc.get("value") or 0))
