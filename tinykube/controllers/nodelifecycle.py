"""The node lifecycle controller: notice nodes that stopped heartbeating.

A node is healthy while its kubelet keeps renewing its Lease in ``kube-node-lease`` or
posting its Ready condition. The controller records, on its own clock, when it last saw
either change (so clock skew between machines does not matter, as upstream); when that is
older than ``--node-monitor-grace-period`` (``--node-startup-grace-period`` for a node that
never posted Ready) it sets the Ready and pressure conditions to Unknown with reason
``NodeStatusUnknown`` and message ``Kubelet stopped posting node status.``. It keeps the
``node.kubernetes.io/unreachable`` (Ready Unknown) and ``node.kubernetes.io/not-ready``
(Ready False) taints, NoSchedule and NoExecute, in step with the Ready condition, marks
the node's pods not Ready, and records NodeNotReady / NodeReady events. Evicting the pods
is the taint-eviction controller's job. Every node has a timer (a delayed work-queue key)
at its deadline, so nothing polls.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext

Obj = dict[str, Any]
NAME = "node-lifecycle-controller"
LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
CONTROLLED_TAINTS = {UNREACHABLE, NOT_READY}
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass
class NodeHealth:
    """What the controller last saw of a node, stamped with its own monotonic clock."""

    probe: float
    heartbeat: str | None = None
    lease_renew: str | None = None
    ready_status: str | None = None


def ready_condition(node: Obj) -> Obj | None:
    return util.condition(node, "Ready")


def unknown_conditions(node: Obj, now: str) -> list[Obj] | None:
    """The node's conditions with Ready and pressures set to Unknown (None: already so)."""
    conditions = copy.deepcopy(util.status(node).get("conditions") or [])
    changed = False
    for type_ in ("Ready", *PRESSURE_CONDITIONS):
        cond = next((c for c in conditions if c.get("type") == type_), None)
        if cond is None:
            if type_ != "Ready":
                continue
            conditions.append({"type": "Ready", "status": "Unknown", "reason":
                               "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.",
                               "lastHeartbeatTime": meta.creation_timestamp(node) or now,
                               "lastTransitionTime": now})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                         "message": "Kubelet stopped posting node status.",
                         "lastTransitionTime": now})
            changed = True
    return conditions if changed else None


def desired_taints(node: Obj, now: str) -> list[Obj]:
    """The node's taints with unreachable/not-ready matching its Ready condition."""
    ready = ready_condition(node)
    current = util.spec(node).get("taints") or []
    if ready is None:
        return list(current)  # not judged yet: the startup grace period decides
    want = {"False": NOT_READY, "Unknown": UNREACHABLE}.get(ready.get("status") or "Unknown")
    kept = [t for t in current if t.get("key") not in CONTROLLED_TAINTS or
            t.get("key") == want]
    if want is not None:
        for effect in ("NoSchedule", "NoExecute"):
            if not any(t.get("key") == want and t.get("effect") == effect for t in kept):
                kept.append({"key": want, "effect": effect, "timeAdded": now})
    return kept


def _taint_ids(taints: list[Obj]) -> set[tuple[str, str]]:
    return {(t.get("key", ""), t.get("effect", "")) for t in taints}


def _node_index(pod: Obj) -> list[str]:
    node = util.spec(pod).get("nodeName")
    return [node] if node else []


def pods_on_node_index(informer: Any) -> None:
    informer.add_index("node", _node_index)


class NodeLifecycleController(BaseController):
    """Marks silent nodes Unknown, taints them and their pods not ready."""

    def __init__(self, ctx: ControllerContext, *, grace_period: float = 40.0,
                 startup_grace_period: float = 60.0, clock: Any = time.monotonic) -> None:
        super().__init__(ctx, NAME, 2)
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.clock = clock
        self.health: dict[str, NodeHealth] = {}
        self.node_informer = ctx.informers.informer("nodes")
        self.lease_informer = ctx.informers.informer("leases", "coordination.k8s.io")
        self.pod_informer = ctx.informers.informer("pods")
        pods_on_node_index(self.pod_informer)
        self.nodes = ctx.client.resource("nodes")
        self.pods = ctx.client.resource("pods")
        self.recorder = ctx.recorder(NAME)
        self.node_informer.add_handlers(on_add=self._node_seen,
                                        on_update=lambda old, new: self._node_seen(new),
                                        on_delete=self._node_deleted)
        self.lease_informer.add_handlers(on_add=self._lease_seen,
                                         on_update=lambda old, new: self._lease_seen(new))

    # observation ------------------------------------------------------------------------

    def _observe(self, name: str) -> NodeHealth:
        health = self.health.get(name)
        if health is None:
            health = self.health[name] = NodeHealth(probe=self.clock())
        return health

    def _node_seen(self, node: Obj) -> None:
        health = self._observe(meta.name(node))
        ready = ready_condition(node) or {}
        beat = ready.get("lastHeartbeatTime")
        if beat and beat != health.heartbeat:
            health.heartbeat = beat
            health.probe = self.clock()
        self.enqueue(meta.name(node))

    def _lease_seen(self, lease: Obj) -> None:
        if meta.namespace(lease) != LEASE_NAMESPACE:
            return
        name = meta.name(lease)
        health = self._observe(name)
        renew = util.spec(lease).get("renewTime")
        if renew and renew != health.lease_renew:
            health.lease_renew = renew
            health.probe = self.clock()
        self.enqueue(name)

    def _node_deleted(self, node: Obj) -> None:
        self.health.pop(meta.name(node), None)

    # sync -------------------------------------------------------------------------------

    async def sync(self, name: str) -> None:
        node = self.node_informer.cache.get(name)
        if node is None:
            return
        health = self._observe(name)
        ready = ready_condition(node)
        grace = self.grace_period if ready is not None else self.startup_grace_period
        remaining = health.probe + grace - self.clock()
        if remaining > 0:
            self.enqueue_after(name, remaining + 0.05)
        else:
            conditions = unknown_conditions(node, meta.now())
            if conditions is not None:
                node = await self._update_status(node, conditions)
                if node is None:
                    return
        await self._sync_taints(node)
        await self._react_to_ready_change(node, health)

    async def _update_status(self, node: Obj, conditions: list[Obj]) -> Obj | None:
        body = copy.deepcopy(node)
        body.setdefault("status", {})["conditions"] = conditions
        try:
            return await self.nodes.update(body, subresource="status")
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    async def _sync_taints(self, node: Obj) -> None:
        current = util.spec(node).get("taints") or []
        want = desired_taints(node, meta.now())
        if _taint_ids(want) == _taint_ids(current):
            return
        body = copy.deepcopy(node)
        body.setdefault("spec", {})["taints"] = want
        if not want:
            body["spec"].pop("taints")
        with ignore_not_found():
            await self.nodes.update(body)

    async def _react_to_ready_change(self, node: Obj, health: NodeHealth) -> None:
        ready = ready_condition(node)
        if ready is None:
            return
        status = ready.get("status")
        previous, health.ready_status = health.ready_status, status
        if status == previous:
            return
        name = meta.name(node)
        if status == "True":
            if previous is not None:
                self.recorder.event(node, "Normal", "NodeReady",
                                    f"Node {name} status is now: NodeReady")
            return
        if previous is not None:
            self.recorder.event(node, "Normal", "NodeNotReady",
                                f"Node {name} status is now: NodeNotReady")
        await self._mark_pods_not_ready(name)

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Pods on a node that stopped reporting are not Ready (upstream MarkPodsNotReady)."""
        for pod in self.pod_informer.cache.by_index("node", node_name):
            if meta.deletion_timestamp(pod) is not None:
                continue
            cond = util.condition(pod, "Ready")
            if cond is None or cond.get("status") == "False":
                continue
            body = copy.deepcopy(pod)
            for c in body["status"]["conditions"]:
                if c.get("type") == "Ready":
                    c.update({"status": "False", "lastTransitionTime": meta.now()})
            try:
                await self.pods.update(body, subresource="status")
            except ApiError as err:
                if err.code not in (404, 409):
                    raise
                continue
            self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")


def new_node_lifecycle_controller(ctx: ControllerContext) -> NodeLifecycleController:
    cfg = ctx.config
    return NodeLifecycleController(ctx, grace_period=cfg.node_monitor_grace_period,
                                   startup_grace_period=cfg.node_startup_grace_period)
