"""The daemonset controller: one pod per eligible node.

A node is eligible when it matches the template's ``nodeSelector`` and required node
affinity and every NoSchedule/NoExecute taint is tolerated (daemon pods also get the
tolerations upstream adds: not-ready and unreachable NoExecute, the pressure taints and
unschedulable). Each pod is pinned to its node, as upstream does, by a required node
affinity term ``matchFields metadata.name In [<node>]``, and the scheduler binds it.
Pods on nodes that are no longer eligible, duplicates and failed pods are deleted.
RollingUpdate (maxUnavailable, default 1) replaces pods whose ``controller-revision-hash``
is outdated; OnDelete leaves them. Expectations guard against double creation.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from tinykube.api import meta, pods
from tinykube.api.errors import ignore_not_found
from tinykube.api.selectors import node_selector_matches

from tinykube.controllers import deployment_util as du
from tinykube.controllers import util
from tinykube.controllers.base import (BaseController, ControllerContext, enqueue_controller_of,
                                       owner_uid_index)
from tinykube.controllers.expectations import ControllerExpectations
from tinykube.controllers.podcontrol import RealPodControl, pod_from_template

Obj = dict[str, Any]
NAME = "daemonset-controller"
REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"

DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists",
     "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def with_daemon_tolerations(tolerations: list[Obj]) -> list[Obj]:
    out = list(tolerations)
    for tol in DAEMON_TOLERATIONS:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"]
                   for t in out):
            out.append(dict(tol))
    return out


def should_run(ds: Obj, node: Obj) -> bool:
    """Would a daemon pod fit this node (selector, required affinity, taints)?"""
    spec = du.template(ds).get("spec") or {}
    selector = spec.get("nodeSelector") or {}
    labels = meta.labels(node)
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required and not node_selector_matches(required, node):
        return False
    tolerations = with_daemon_tolerations(spec.get("tolerations") or [])
    return not pods.untolerated_taints(tolerations, util.spec(node).get("taints") or [])


def pin_to_node(pod: Obj, node_name: str) -> None:
    """Replace the pod's required node affinity with a term naming exactly this node."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In",
                             "values": [node_name]}]}
    affinity = pod["spec"].setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or [{}]
    new_terms = []
    for t in terms:
        t = copy.deepcopy(t)
        t["matchFields"] = term["matchFields"]
        new_terms.append(t)
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": new_terms}


def pod_node(pod: Obj) -> str | None:
    """The node a daemon pod is for: its nodeName, else its matchFields pin."""
    if util.spec(pod).get("nodeName"):
        return util.spec(pod)["nodeName"]
    required = ((((util.spec(pod).get("affinity") or {}).get("nodeAffinity") or {})
                 .get("requiredDuringSchedulingIgnoredDuringExecution")) or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("values"):
                return field["values"][0]
    return None


class DaemonSetController(BaseController):
    """Reconciles DaemonSets with one pod per eligible node."""

    def __init__(self, ctx: ControllerContext, workers: int = 2) -> None:
        super().__init__(ctx, NAME, workers)
        self.expectations = ControllerExpectations()
        self.ds_informer = ctx.informers.informer("daemonsets", "apps")
        self.node_informer = ctx.informers.informer("nodes")
        self.pod_informer = ctx.informers.informer("pods")
        owner_uid_index(self.pod_informer)
        self.daemonsets = ctx.client.resource("daemonsets", "apps")
        self.recorder = ctx.recorder(NAME)
        self.pod_control = RealPodControl(ctx.client, self.recorder)
        self.ds_informer.add_handlers(on_add=lambda d: self.enqueue(meta.key(d)),
                                      on_update=lambda o, n: self.enqueue(meta.key(n)),
                                      on_delete=lambda d: self.expectations.delete_expectations(
                                          meta.key(d)))
        self.node_informer.add_handlers(on_add=self._node_event,
                                        on_update=self._node_updated,
                                        on_delete=self._node_event)
        enqueue_controller_of(self.pod_informer, "DaemonSet", self.enqueue, self.expectations)

    def _all(self) -> None:
        for ds in self.ds_informer.cache.list():
            self.enqueue(meta.key(ds))

    def _node_event(self, node: Obj) -> None:
        self._all()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if meta.labels(old) != meta.labels(new) or \
                util.spec(old).get("taints") != util.spec(new).get("taints"):
            self._all()

    async def sync(self, key: str) -> None:
        ds = self.ds_informer.cache.get(key)
        if ds is None:
            self.expectations.delete_expectations(key)
            return
        revision = du.compute_hash(du.template(ds))
        owned = [p for p in self.pod_informer.cache.by_index("owner-uid", meta.uid(ds))
                 if meta.deletion_timestamp(p) is None]
        by_node: dict[str, list[Obj]] = {}
        for pod in owned:
            by_node.setdefault(pod_node(pod) or "", []).append(pod)
        nodes = self.node_informer.cache.list()
        eligible = {meta.name(n) for n in nodes if should_run(ds, n)}
        if meta.deletion_timestamp(ds) is None and self.expectations.satisfied(key):
            await self._manage(ds, key, eligible, by_node, revision)
        await self._write_status(ds, eligible, by_node, revision)

    async def _manage(self, ds: Obj, key: str, eligible: set[str],
                      by_node: dict[str, list[Obj]], revision: str) -> None:
        create: list[str] = []
        delete: list[Obj] = []
        for node in sorted(eligible):
            node_pods = by_node.get(node, [])
            failed = [p for p in node_pods if util.pod_phase(p) == "Failed"]
            delete.extend(failed)
            alive = [p for p in node_pods if p not in failed]
            if not alive:
                create.append(node)
            elif len(alive) > 1:
                delete.extend(sorted(alive, key=util.creation_time)[1:])
        for node, node_pods in by_node.items():
            if node not in eligible:
                delete.extend(node_pods)
        delete.extend(self._outdated_to_replace(ds, eligible, by_node, revision, delete))
        if create:
            self.expectations.expect_creations(key, len(create))
            results = await asyncio.gather(*(self._create(ds, n, revision) for n in create),
                                           return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                self.expectations.lower_expectations(key, add=len(errors))
                raise errors[0]
        await asyncio.gather(*(self.pod_control.delete_pod(meta.namespace(p), meta.name(p), ds)
                               for p in delete))

    def _outdated_to_replace(self, ds: Obj, eligible: set[str], by_node: dict[str, list[Obj]],
                             revision: str, already: list[Obj]) -> list[Obj]:
        strategy = util.spec(ds).get("updateStrategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return []
        desired = len(eligible)
        max_unavailable = du.scaled_value(
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), desired, True) or 1
        unavailable = sum(1 for n in eligible if not any(
            util.is_pod_available(p, int(util.spec(ds).get("minReadySeconds") or 0))
            for p in by_node.get(n, [])))
        budget = max_unavailable - unavailable
        out = []
        for node in sorted(eligible):
            if budget <= 0:
                break
            for pod in by_node.get(node, []):
                if pod in already or meta.labels(pod).get(REVISION_LABEL) == revision:
                    continue
                out.append(pod)
                budget -= 1
                break
        return out

    async def _create(self, ds: Obj, node: str, revision: str) -> None:
        pod = pod_from_template(du.template(ds), ds)
        pod["metadata"]["labels"][REVISION_LABEL] = revision
        pod["metadata"]["labels"][GENERATION_LABEL] = str(meta.generation(ds))
        pod["spec"]["tolerations"] = with_daemon_tolerations(pod["spec"].get("tolerations") or [])
        pin_to_node(pod, node)
        await self.pod_control.create_pod(pod, ds)

    async def _write_status(self, ds: Obj, eligible: set[str], by_node: dict[str, list[Obj]],
                            revision: str) -> None:
        min_ready = int(util.spec(ds).get("minReadySeconds") or 0)
        scheduled = [n for n in eligible if by_node.get(n)]
        ready = sum(1 for n in scheduled if any(util.is_pod_ready(p) for p in by_node[n]))
        available = sum(1 for n in scheduled
                        if any(util.is_pod_available(p, min_ready) for p in by_node[n]))
        updated = sum(1 for n in scheduled if any(
            meta.labels(p).get(REVISION_LABEL) == revision for p in by_node[n]))
        status = {
            "currentNumberScheduled": len(scheduled),
            "numberMisscheduled": sum(1 for n, ps in by_node.items()
                                      if n not in eligible and ps),
            "desiredNumberScheduled": len(eligible),
            "numberReady": ready,
            "observedGeneration": meta.generation(ds),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": max(len(eligible) - available, 0),
        }
        old = util.status(ds)
        if all(int(old.get(k) or 0) == v for k, v in status.items()):
            return
        with ignore_not_found():
            await self.daemonsets.update({**ds, "status": {**old, **status}},
                                         subresource="status")


def new_daemonset_controller(ctx: ControllerContext) -> DaemonSetController:
    return DaemonSetController(ctx, workers=ctx.config.concurrent_daemonset_syncs)
