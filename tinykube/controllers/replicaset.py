"""The replicaset controller: keep ``spec.replicas`` pods matching a ReplicaSet's selector.

Shape as upstream's replica_set.go: event handlers only resolve owners, adjust
expectations and enqueue ``ns/name``; ``sync`` reads the caches, claims pods (adopting
orphans, releasing mismatches), creates or deletes the difference under a burst cap in
slow-start batches, and always writes status. The same class drives ReplicationControllers
(``KIND_RC``), whose selector is a plain label map.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.api.selectors import LabelSelector

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext, namespace_index
from tinykube.controllers.expectations import ControllerExpectations
from tinykube.controllers.podcontrol import PodControl, RealPodControl, pod_from_template, slow_start_batch
from tinykube.controllers.refmanager import ControllerRefManager

Obj = dict[str, Any]

# Upstream BurstReplicas: at most this many creations/deletions per sync.
BURST_REPLICAS = 500
POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


@dataclass(frozen=True)
class ReplicaKind:
    """What differs between ReplicaSets and ReplicationControllers."""

    resource: str
    group: str | None
    api_version: str
    kind: str
    controller_name: str

    def selector(self, obj: Obj) -> LabelSelector:
        sel = util.spec(obj).get("selector")
        try:
            if self.kind == "ReplicationController":
                return LabelSelector.from_set(sel or {})
            return LabelSelector.from_dict(sel or {})
        except ValueError:
            return LabelSelector.none()  # invalid selectors select nothing, as upstream


KIND_RS = ReplicaKind("replicasets", "apps", "apps/v1", "ReplicaSet", "replicaset-controller")
KIND_RC = ReplicaKind("replicationcontrollers", None, "v1", "ReplicationController",
                      "replicationcontroller-controller")


def desired_replicas(obj: Obj) -> int:
    value = util.spec(obj).get("replicas")
    return 1 if value is None else int(value)


def min_ready_seconds(obj: Obj) -> int:
    return int(util.spec(obj).get("minReadySeconds") or 0)


# --- deletion ranking -------------------------------------------------------------------

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _deletion_cost(pod: Obj) -> int:
    try:
        return int(meta.annotations(pod).get(POD_DELETION_COST, "0"))
    except ValueError:
        return 0


def _restarts(pod: Obj) -> int:
    return sum(int(c.get("restartCount") or 0)
               for c in util.status(pod).get("containerStatuses") or [])


def deletion_order_key(pod: Obj, rank: int) -> tuple:
    """Sort key: the pods to delete first sort first (upstream ActivePodsWithRanks).

    Unassigned before assigned, Pending < Unknown < Running, not ready before ready,
    doubled-up pods (higher rank) first, lower pod-deletion-cost first, ready for less
    time first, more restarts first, newer first.
    """
    assigned = 1 if util.spec(pod).get("nodeName") else 0
    ready = util.ready_since(pod)
    ready_ts = -ready.timestamp() if ready else 0.0
    created = util.parse_time(util.creation_time(pod))
    created_ts = -created.timestamp() if created else 0.0
    return (assigned, _PHASE_RANK.get(util.pod_phase(pod), 0), 1 if ready else 0, -rank,
            _deletion_cost(pod), ready_ts, -_restarts(pod), created_ts)


def pods_to_delete(filtered: list[Obj], related: list[Obj], diff: int) -> list[Obj]:
    """The ``diff`` pods to delete, ranked by how many related pods share their node."""
    if diff >= len(filtered):
        return list(filtered)
    per_node: dict[str, int] = {}
    for pod in related:
        node = util.spec(pod).get("nodeName")
        if node and util.is_pod_active(pod):
            per_node[node] = per_node.get(node, 0) + 1
    ranked = sorted(filtered, key=lambda p: deletion_order_key(
        p, per_node.get(util.spec(p).get("nodeName") or "", 0)))
    return ranked[:diff]


# --- status ------------------------------------------------------------------------------

def calculate_status(rs: Obj, owned: list[Obj], manage_error: BaseException | None,
                     diff: int, now: dt.datetime | None = None) -> Obj:
    """The new status from the owned active pods (upstream calculateStatus)."""
    template_labels = ((util.spec(rs).get("template") or {}).get("metadata") or {}).get(
        "labels") or {}
    min_ready = min_ready_seconds(rs)
    fully = ready = available = 0
    for pod in owned:
        labels = meta.labels(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if util.is_pod_ready(pod):
            ready += 1
            if util.is_pod_available(pod, min_ready, now):
                available += 1
    old = util.status(rs)
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in old.get("conditions") or []
                    if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None:
        reason = "FailedCreate" if diff < 0 else "FailedDelete"
        conditions.append(failure or {"type": "ReplicaFailure", "status": "True",
                                      "lastTransitionTime": meta.now(), "reason": reason,
                                      "message": str(manage_error)})
    status: Obj = {
        "replicas": len(owned),
        "fullyLabeledReplicas": fully,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": (rs.get("metadata") or {}).get("generation", 0),
    }
    if conditions:
        status["conditions"] = conditions
    return status


def status_changed(old: Obj, new: Obj) -> bool:
    keys = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas",
            "observedGeneration", "conditions")
    return any((old.get(k) or 0) != (new.get(k) or 0) for k in keys)


# --- the controller ----------------------------------------------------------------------

class ReplicaSetController(BaseController):
    """Reconciles ReplicaSets (or ReplicationControllers) with their pods."""

    def __init__(self, ctx: ControllerContext, kind: ReplicaKind = KIND_RS, *,
                 pod_control: PodControl | None = None, workers: int = 5,
                 burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(ctx, kind.controller_name, workers)
        self.kind = kind
        self.burst_replicas = burst_replicas
        self.expectations = ControllerExpectations()
        self.rs_informer = ctx.informers.informer(kind.resource, kind.group)
        self.pod_informer = ctx.informers.informer("pods")
        namespace_index(self.pod_informer)
        self.owners = ctx.client.resource(kind.resource, kind.group)
        self.pod_control = pod_control or RealPodControl(
            ctx.client, ctx.recorder(kind.controller_name))
        self.rs_informer.add_handlers(on_add=self._rs_added, on_update=self._rs_updated,
                                      on_delete=self._rs_deleted)
        self.pod_informer.add_handlers(on_add=self._pod_added, on_update=self._pod_updated,
                                       on_delete=self._pod_deleted)

    # handlers: resolve, adjust expectations, enqueue -------------------------------------

    def _rs_added(self, rs: Obj) -> None:
        self.enqueue(meta.key(rs))

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(meta.key(new))

    def _rs_deleted(self, rs: Obj) -> None:
        self.expectations.delete_expectations(meta.key(rs))
        self.enqueue(meta.key(rs))

    def _resolve(self, pod: Obj) -> Obj | None:
        return util.resolve_controller(self.rs_informer.cache, pod, self.kind.kind)

    def _matching_owners(self, pod: Obj) -> list[Obj]:
        ns = meta.namespace(pod)
        return [rs for rs in self.rs_informer.cache.list()
                if meta.namespace(rs) == ns and self.kind.selector(rs).matches(meta.labels(pod))]

    def _pod_added(self, pod: Obj) -> None:
        if meta.deletion_timestamp(pod) is not None:
            self._pod_deleted(pod)
            return
        if meta.controller_of(pod) is not None:
            rs = self._resolve(pod)
            if rs is not None:
                self.expectations.creation_observed(meta.key(rs))
                self.enqueue(meta.key(rs))
            return
        for rs in self._matching_owners(pod):
            self.enqueue(meta.key(rs))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(new):
            return
        if meta.deletion_timestamp(new) is not None and meta.deletion_timestamp(old) is None:
            self._pod_deleted(new)
            return
        old_ref, new_ref = meta.controller_of(old), meta.controller_of(new)
        labels_changed = meta.labels(old) != meta.labels(new)
        if old_ref and (not new_ref or old_ref.get("uid") != new_ref.get("uid")):
            owner = self._resolve(old)
            if owner is not None:
                self.enqueue(meta.key(owner))
        if new_ref is not None:
            rs = self._resolve(new)
            if rs is None:
                return
            self.enqueue(meta.key(rs))
            became_ready = not util.is_pod_ready(old) and util.is_pod_ready(new)
            if became_ready and min_ready_seconds(rs) > 0:
                # Available only after minReadySeconds: look again then (upstream does too).
                self.enqueue_after(meta.key(rs), min_ready_seconds(rs) + 1)
            return
        if labels_changed or old_ref:
            for rs in self._matching_owners(new):
                self.enqueue(meta.key(rs))

    def _pod_deleted(self, pod: Obj) -> None:
        rs = self._resolve(pod)
        if rs is None:
            return
        key = meta.key(rs)
        self.expectations.deletion_observed(key, meta.key(pod))
        self.enqueue(key)

    # sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        rs = self.rs_informer.cache.get(key)
        if rs is None:
            self.expectations.delete_expectations(key)
            return
        satisfied = self.expectations.satisfied(key)
        selector = self.kind.selector(rs)
        namespace = meta.namespace(rs)
        related = self.pod_informer.cache.by_index("namespace", namespace)
        active = [p for p in related if util.is_pod_active(p)]
        refs = ControllerRefManager(rs, selector, self.pod_control.patch_pod,
                                    lambda: self._fresh(rs))
        owned = await refs.claim(active)
        manage_error: BaseException | None = None
        diff = len(owned) - desired_replicas(rs)
        if satisfied and meta.deletion_timestamp(rs) is None:
            manage_error = await self._manage_replicas(key, rs, owned, related)
        new_status = calculate_status(rs, owned, manage_error, diff)
        await self._write_status(rs, new_status)
        min_ready = min_ready_seconds(rs)
        if (manage_error is None and min_ready > 0
                and new_status["readyReplicas"] != new_status["availableReplicas"]):
            self.enqueue_after(key, min_ready)
        if manage_error is not None:
            raise manage_error

    async def _fresh(self, rs: Obj) -> Obj | None:
        try:
            return await self.owners.get(meta.name(rs), namespace=meta.namespace(rs))
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    async def _manage_replicas(self, key: str, rs: Obj, owned: list[Obj],
                               related: list[Obj]) -> BaseException | None:
        diff = len(owned) - desired_replicas(rs)
        if diff < 0:
            count = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, count)
            template = util.spec(rs).get("template") or {}

            async def create_one() -> None:
                await self.pod_control.create_pod(pod_from_template(template, rs), rs)

            created, err = await slow_start_batch(count, 1, create_one)
            if created < count:
                self.expectations.lower_expectations(key, add=count - created)
            return err
        if diff > 0:
            count = min(diff, self.burst_replicas)
            victims = pods_to_delete(owned, related, count)
            self.expectations.expect_deletions(key, [meta.key(p) for p in victims])
            errors = await self._delete_all(key, rs, victims)
            return errors[0] if errors else None
        return None

    async def _delete_all(self, key: str, rs: Obj, victims: list[Obj]) -> list[BaseException]:
        async def delete_one(pod: Obj) -> None:
            try:
                await self.pod_control.delete_pod(meta.namespace(pod), meta.name(pod), rs)
            except ApiError:
                self.expectations.deletion_observed(key, meta.key(pod))
                raise

        results = await asyncio.gather(*(delete_one(p) for p in victims),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for err in errors:
            if not isinstance(err, Exception):
                raise err
        return errors

    async def _write_status(self, rs: Obj, new_status: Obj) -> None:
        if not status_changed(util.status(rs), new_status):
            return
        updated = dict(rs)
        updated["status"] = {**util.status(rs), **new_status}
        if "conditions" not in new_status:
            updated["status"].pop("conditions", None)
        try:
            await self.owners.update(updated, subresource="status")
        except ApiError as err:
            if err.code == 404:
                return
            if err.code != 409:
                raise
            fresh = await self._fresh(rs)
            if fresh is None:
                return
            fresh["status"] = {**util.status(fresh), **new_status}
            if "conditions" not in new_status:
                fresh["status"].pop("conditions", None)
            await self.owners.update(fresh, subresource="status")


def new_replicaset_controller(ctx: ControllerContext) -> ReplicaSetController:
    return ReplicaSetController(ctx, KIND_RS, workers=ctx.config.concurrent_replicaset_syncs)


def new_replicationcontroller_controller(ctx: ControllerContext) -> ReplicaSetController:
    return ReplicaSetController(ctx, KIND_RC, workers=ctx.config.concurrent_rc_syncs)


__all__ = ["ReplicaSetController", "KIND_RS", "KIND_RC", "calculate_status", "pods_to_delete",
           "deletion_order_key", "new_replicaset_controller",
           "new_replicationcontroller_controller"]
