"""The disruption controller: PodDisruptionBudget status, which the eviction API obeys.

For each budget it counts the selected pods that are Ready and not being deleted
(``currentHealthy``), works out how many must stay (``desiredHealthy``: ``minAvailable``
as a number; or a percentage / ``maxUnavailable`` against ``expectedPods``, the replicas of
the pods' controllers — a Deployment's, ReplicaSet's, StatefulSet's or
ReplicationController's ``spec.replicas``), and publishes ``disruptionsAllowed`` with the
``DisruptionAllowed`` condition (SufficientPods / InsufficientPods). Pods the eviction API
recorded in ``disruptedPods`` are not counted as healthy until their deletion is seen or
two minutes pass, as upstream.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ignore_not_found
from tinykube.api.selectors import LabelSelector

from tinykube.controllers import deployment_util as du
from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext, namespace_index

Obj = dict[str, Any]
NAME = "disruption-controller"
DELETION_TIMEOUT = 120.0  # seconds a disruptedPods entry waits for the pod's deletion


def budget_selector(pdb: Obj) -> LabelSelector:
    try:
        return LabelSelector.from_dict(util.spec(pdb).get("selector"))
    except ValueError:
        return LabelSelector.none()


def is_percent(value: Any) -> bool:
    return isinstance(value, str) and value.endswith("%")


class DisruptionController(BaseController):
    """Keeps PodDisruptionBudget status current."""

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx, NAME, 2)
        self.pdb_informer = ctx.informers.informer("poddisruptionbudgets", "policy")
        self.pod_informer = ctx.informers.informer("pods")
        namespace_index(self.pdb_informer)
        namespace_index(self.pod_informer)
        self.owners = {kind: ctx.informers.informer(resource, group) for kind, resource, group in (
            ("ReplicaSet", "replicasets", "apps"), ("Deployment", "deployments", "apps"),
            ("StatefulSet", "statefulsets", "apps"),
            ("ReplicationController", "replicationcontrollers", None))}
        self.pdbs = ctx.client.resource("poddisruptionbudgets", "policy")
        self.pdb_informer.add_handlers(on_add=lambda p: self.enqueue(meta.key(p)),
                                       on_update=lambda o, n: self.enqueue(meta.key(n)))
        self.pod_informer.add_handlers(on_add=self._pod_changed,
                                       on_update=lambda o, n: self._pod_changed(n),
                                       on_delete=self._pod_changed)
        for informer in self.owners.values():
            informer.add_handlers(on_update=lambda o, n: self._scale_changed(o, n))

    def _pod_changed(self, pod: Obj) -> None:
        for pdb in self.pdb_informer.cache.by_index("namespace", meta.namespace(pod)):
            if budget_selector(pdb).matches(meta.labels(pod)):
                self.enqueue(meta.key(pdb))

    def _scale_changed(self, old: Obj, new: Obj) -> None:
        if du.replicas(old) != du.replicas(new):
            for pdb in self.pdb_informer.cache.by_index("namespace", meta.namespace(new)):
                self.enqueue(meta.key(pdb))

    def expected_scale(self, pods: list[Obj]) -> int:
        """The summed replicas of the controllers of ``pods`` (each controller once)."""
        seen: dict[str, int] = {}
        for pod in pods:
            ref = meta.controller_of(pod)
            if not ref or ref.get("kind") not in self.owners:
                continue
            owner = util.resolve_controller(self.owners[ref["kind"]].cache, pod, ref["kind"])
            if owner is None:
                continue
            if ref["kind"] == "ReplicaSet":
                owner = util.resolve_controller(self.owners["Deployment"].cache, owner,
                                                "Deployment") or owner
            seen[meta.uid(owner)] = du.replicas(owner)
        return sum(seen.values())

    def desired(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy) as upstream's getExpectedPodCount."""
        spec = util.spec(pdb)
        if spec.get("maxUnavailable") is not None:
            expected = self.expected_scale(pods)
            return expected, max(expected - du.scaled_value(spec["maxUnavailable"], expected,
                                                            True), 0)
        min_available = spec.get("minAvailable")
        if min_available is None:
            return len(pods), 0
        if is_percent(min_available):
            expected = self.expected_scale(pods)
            return expected, math.ceil(int(min_available[:-1]) * expected / 100)
        return len(pods), int(min_available)

    async def sync(self, key: str) -> None:
        pdb = self.pdb_informer.cache.get(key)
        if pdb is None:
            return
        selector = budget_selector(pdb)
        pods = [p for p in self.pod_informer.cache.by_index("namespace", meta.namespace(pdb))
                if selector.matches(meta.labels(p)) and util.pod_phase(p) not in
                ("Succeeded", "Failed")]
        now = util.utcnow()
        disrupted = self._live_disruptions(pdb, pods, now)
        healthy = sum(1 for p in pods if util.is_pod_ready(p) and
                      meta.deletion_timestamp(p) is None and meta.name(p) not in disrupted)
        expected, desired = self.desired(pdb, pods)
        allowed = max(healthy - desired, 0)
        status = copy.deepcopy(util.status(pdb))
        status.update({"currentHealthy": healthy, "desiredHealthy": desired,
                       "expectedPods": expected, "disruptionsAllowed": allowed,
                       "observedGeneration": meta.generation(pdb)})
        if disrupted:
            status["disruptedPods"] = disrupted
        else:
            status.pop("disruptedPods", None)
        reason, cond_status = ("SufficientPods", "True") if allowed > 0 else \
            ("InsufficientPods", "False")
        old = next((c for c in status.get("conditions") or []
                    if c.get("type") == "DisruptionAllowed"), None)
        if old is None or old.get("status") != cond_status or old.get("reason") != reason:
            status["conditions"] = [c for c in status.get("conditions") or []
                                    if c.get("type") != "DisruptionAllowed"] + [
                {"type": "DisruptionAllowed", "status": cond_status, "reason": reason,
                 "message": "", "lastTransitionTime": meta.now(),
                 "observedGeneration": meta.generation(pdb)}]
        if status != util.status(pdb):
            with ignore_not_found():
                await self.pdbs.update({**pdb, "status": status}, subresource="status")

    def _live_disruptions(self, pdb: Obj, pods: list[Obj], now: dt.datetime) -> dict[str, str]:
        """disruptedPods entries still pending (pod present, not deleting, not expired)."""
        alive = {meta.name(p): p for p in pods}
        out: dict[str, str] = {}
        for name, stamp in (util.status(pdb).get("disruptedPods") or {}).items():
            pod = alive.get(name)
            since = util.parse_time(stamp)
            if pod is None or meta.deletion_timestamp(pod) is not None or since is None:
                continue
            left = (since + dt.timedelta(seconds=DELETION_TIMEOUT) - now).total_seconds()
            if left <= 0:
                continue
            out[name] = stamp
            self.enqueue_after(meta.key(pdb), left)
        return out


def new_disruption_controller(ctx: ControllerContext) -> DisruptionController:
    return DisruptionController(ctx)
