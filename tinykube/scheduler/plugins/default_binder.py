"""DefaultBinder: bind by POSTing a Binding to the pod's ``binding`` subresource."""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import ApiError
from tinykube.scheduler.framework import CycleState, Status, error
from tinykube.scheduler.nodeinfo import PodInfo

NAME = "DefaultBinder"


def binding_for(pod: PodInfo, node: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


class DefaultBinder:
    name = NAME

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        try:
            await self.handle.client.resource("pods").create_subresource(
                pod.name, "binding", binding_for(pod, node), namespace=pod.namespace)
        except ApiError as exc:
            return error(exc.message or str(exc), plugin=NAME)
        return None


def new(args: dict[str, Any], handle: Any) -> DefaultBinder:
    return DefaultBinder(handle)
