"""The pod garbage collector: pods nobody else will ever clean up.

- Terminated (Succeeded/Failed) pods beyond ``--terminated-pod-gc-threshold`` are deleted,
  oldest first.
- Pods bound to a node that no longer exists are force-deleted after a quarantine
  (confirmed with a live GET, so a lagging node cache cannot cause it), with the
  ``DisruptionTarget`` condition reason ``DeletionByPodGC``.
- Terminating pods that were never scheduled are force-deleted: no kubelet will finish them.
"""

from __future__ import annotations

import copy
from typing import Any

from tinykube.api import meta, pods
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext
from tinykube.controllers.nodelifecycle import pods_on_node_index

Obj = dict[str, Any]
NAME = "pod-garbage-collector-controller"
TERMINATED = "__terminated__"
# Upstream waits this long before trusting that a pod's node is really gone.
ORPHAN_QUARANTINE = 40.0


class PodGCController(BaseController):
    """Deletes terminated pods over the threshold, orphans and unscheduled terminating pods."""

    def __init__(self, ctx: ControllerContext, threshold: int,
                 quarantine: float = ORPHAN_QUARANTINE) -> None:
        super().__init__(ctx, NAME, 2)
        self.threshold = threshold
        self.quarantine = quarantine
        self.pod_informer = ctx.informers.informer("pods")
        self.node_informer = ctx.informers.informer("nodes")
        pods_on_node_index(self.pod_informer)
        self.pods = ctx.client.resource("pods")
        self.nodes = ctx.client.resource("nodes")
        self.pod_informer.add_handlers(on_add=self._pod_changed,
                                       on_update=lambda old, new: self._pod_changed(new))
        self.node_informer.add_handlers(on_delete=self._node_deleted)

    def _pod_changed(self, pod: Obj) -> None:
        if pods.is_terminal(pod) and self.threshold > 0:
            self.enqueue(TERMINATED)
        node = util.spec(pod).get("nodeName")
        if meta.deletion_timestamp(pod) is not None and not node:
            self.enqueue(meta.key(pod))
        elif node and self.node_informer.cache.get(node) is None:
            self.enqueue_after(meta.key(pod), self.quarantine)

    def _node_deleted(self, node: Obj) -> None:
        for pod in self.pod_informer.cache.by_index("node", meta.name(node)):
            self.enqueue_after(meta.key(pod), self.quarantine)

    async def sync(self, key: str) -> None:
        if key == TERMINATED:
            await self._gc_terminated()
            return
        pod = self.pod_informer.cache.get(key)
        if pod is None:
            return
        node = util.spec(pod).get("nodeName")
        if not node:
            if meta.deletion_timestamp(pod) is not None:
                await self._force_delete(pod)
            return
        if self.node_informer.cache.get(node) is not None:
            return
        try:
            await self.nodes.get(node)
            return
        except ApiError as err:
            if err.code != 404:
                raise
        await self._mark_disruption(pod)
        await self._force_delete(pod)

    async def _gc_terminated(self) -> None:
        terminated = [p for p in self.pod_informer.cache.list() if pods.is_terminal(p)]
        excess = len(terminated) - self.threshold
        if excess <= 0:
            return
        terminated.sort(key=lambda p: (util.creation_time(p), meta.name(p)))
        for pod in terminated[:excess]:
            with ignore_not_found():
                await self.pods.delete(meta.name(pod), namespace=meta.namespace(pod))

    async def _mark_disruption(self, pod: Obj) -> None:
        body = copy.deepcopy(pod)
        pods.set_condition(body.setdefault("status", {}), {
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": meta.now()})
        try:
            await self.pods.update(body, subresource="status")
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _force_delete(self, pod: Obj) -> None:
        with ignore_not_found():
            await self.pods.delete(meta.name(pod), namespace=meta.namespace(pod),
                                   grace_period_seconds=0)


def new_podgc_controller(ctx: ControllerContext) -> PodGCController:
    return PodGCController(ctx, ctx.config.terminated_pod_gc_threshold)
