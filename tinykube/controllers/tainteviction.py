"""The taint-eviction controller: delete pods from nodes with NoExecute taints they do not
tolerate.

A pod that tolerates none of a node's NoExecute taints is deleted at once; one that
tolerates them all for a while (the smallest ``tolerationSeconds`` of the tolerations
used; the DefaultTolerationSeconds admission plugin gives 300 s for not-ready and
unreachable) is deleted when that time, counted from when the controller first saw the
pod needing eviction, has passed; a toleration without ``tolerationSeconds`` tolerates
forever. Before deleting it adds the ``DisruptionTarget`` condition (reason
``DeletionByTaintManager``) and records ``TaintManagerEviction``, as upstream. Waiting is
a delayed work-queue key per pod.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from tinykube.api import meta, pods
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext
from tinykube.controllers.nodelifecycle import pods_on_node_index

Obj = dict[str, Any]
NAME = "taint-eviction-controller"


def no_execute_taints(node: Obj) -> list[Obj]:
    return [t for t in util.spec(node).get("taints") or [] if t.get("effect") == "NoExecute"]


def min_toleration_seconds(tolerations: list[Obj], taints: list[Obj]) -> float | None:
    """Seconds the pod may stay: 0 untolerated, None forever (upstream getMinTolerationTime)."""
    used: list[Obj] = []
    for taint in taints:
        matching = [t for t in tolerations if pods.tolerates_taint(t, taint)]
        if not matching:
            return 0.0
        used.extend(matching)
    seconds = [float(t["tolerationSeconds"]) for t in used
               if t.get("tolerationSeconds") is not None]
    if not seconds:
        return None
    return max(min(seconds), 0.0)


class TaintEvictionController(BaseController):
    """Evicts pods whose tolerations of their node's NoExecute taints ran out."""

    def __init__(self, ctx: ControllerContext, clock: Any = time.monotonic) -> None:
        super().__init__(ctx, NAME, 4)
        self.clock = clock
        self.first_seen: dict[str, float] = {}
        self.node_informer = ctx.informers.informer("nodes")
        self.pod_informer = ctx.informers.informer("pods")
        pods_on_node_index(self.pod_informer)
        self.pods = ctx.client.resource("pods")
        self.recorder = ctx.recorder(NAME)
        self.node_informer.add_handlers(on_add=self._node_changed,
                                        on_update=self._node_updated)
        self.pod_informer.add_handlers(on_add=self._pod_changed,
                                       on_update=lambda old, new: self._pod_changed(new),
                                       on_delete=lambda pod: self.first_seen.pop(
                                           meta.key(pod), None))

    def _node_changed(self, node: Obj) -> None:
        if no_execute_taints(node):
            for pod in self.pod_informer.cache.by_index("node", meta.name(node)):
                self.enqueue(meta.key(pod))

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if no_execute_taints(old) != no_execute_taints(new):
            for pod in self.pod_informer.cache.by_index("node", meta.name(new)):
                self.enqueue(meta.key(pod))

    def _pod_changed(self, pod: Obj) -> None:
        node = util.spec(pod).get("nodeName")
        if node and meta.deletion_timestamp(pod) is None:
            node_obj = self.node_informer.cache.get(node)
            if node_obj is not None and no_execute_taints(node_obj):
                self.enqueue(meta.key(pod))

    async def sync(self, key: str) -> None:
        pod = self.pod_informer.cache.get(key)
        if pod is None or meta.deletion_timestamp(pod) is not None:
            self.first_seen.pop(key, None)
            return
        node = self.node_informer.cache.get(util.spec(pod).get("nodeName") or "")
        taints = no_execute_taints(node) if node is not None else []
        if not taints:
            self.first_seen.pop(key, None)
            return
        allowed = min_toleration_seconds(util.spec(pod).get("tolerations") or [], taints)
        if allowed is None:
            return
        start = self.first_seen.setdefault(key, self.clock())
        remaining = start + allowed - self.clock()
        if remaining > 0:
            self.enqueue_after(key, remaining)
            return
        await self._evict(pod)

    async def _evict(self, pod: Obj) -> None:
        ns, name = meta.namespace(pod), meta.name(pod)
        self.recorder.event(pod, "Normal", "TaintManagerEviction",
                            f"Marking for deletion Pod {ns}/{name}")
        body = copy.deepcopy(pod)
        status = body.setdefault("status", {})
        pods.set_condition(status, {"type": "DisruptionTarget", "status": "True",
                                    "reason": "DeletionByTaintManager",
                                    "message": "Taint manager: deleting due to NoExecute taint",
                                    "lastTransitionTime": meta.now()})
        try:
            await self.pods.update(body, subresource="status")
        except ApiError as err:
            if err.code == 404:
                return
            if err.code != 409:
                raise
        with ignore_not_found():
            await self.pods.delete(name, namespace=ns)
        self.first_seen.pop(meta.key(pod), None)


def new_taint_eviction_controller(ctx: ControllerContext) -> TaintEvictionController:
    return TaintEvictionController(ctx)
