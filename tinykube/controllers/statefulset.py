"""The statefulset controller: pods with stable names ``<sts>-0 .. <sts>-N-1``.

With ``podManagementPolicy: OrderedReady`` (the default) pod *i* is created only once every
lower ordinal is Running and Ready, and scale-down removes the highest ordinal first, one
at a time; ``Parallel`` creates and deletes without waiting. Each pod gets
``hostname``/``subdomain`` (``spec.serviceName``) for stable DNS, the labels
``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
``controller-revision-hash``, and one PersistentVolumeClaim per ``volumeClaimTemplates``
entry named ``<template>-<sts>-<ordinal>`` (claims outlive the pods, the default Retain
policy). Template revisions are ControllerRevisions ``<sts>-<hash>``; RollingUpdate
replaces outdated pods from the highest ordinal down to ``partition``, one at a time.
Names are deterministic, so a stale cache only costs an AlreadyExists.
"""

from __future__ import annotations

import copy
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import deployment_util as du
from tinykube.controllers import util
from tinykube.controllers.base import (BaseController, ControllerContext, enqueue_controller_of,
                                       owner_uid_index)
from tinykube.controllers.podcontrol import controller_ref, pod_from_template

Obj = dict[str, Any]
NAME = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


def ordinal(sts: Obj, pod: Obj) -> int | None:
    prefix = f"{meta.name(sts)}-"
    name = meta.name(pod)
    if not name.startswith(prefix) or not name[len(prefix):].isdigit():
        return None
    return int(name[len(prefix):])


def revision_name(sts: Obj) -> str:
    return f"{meta.name(sts)}-{du.compute_hash(du.template(sts))}"


def claim_name(template: Obj, sts: Obj, index: int) -> str:
    return f"{meta.name(template)}-{meta.name(sts)}-{index}"


def build_pod(sts: Obj, index: int, revision: str) -> Obj:
    name = f"{meta.name(sts)}-{index}"
    pod = pod_from_template(du.template(sts), sts, name=name)
    md = pod["metadata"]
    md["labels"].update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(index),
                         REVISION_LABEL: revision})
    spec = pod["spec"]
    spec["hostname"] = name
    if util.spec(sts).get("serviceName"):
        spec["subdomain"] = util.spec(sts)["serviceName"]
    templates = util.spec(sts).get("volumeClaimTemplates") or []
    if templates:
        names = {meta.name(t) for t in templates}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        for t in templates:
            volumes.append({"name": meta.name(t), "persistentVolumeClaim": {
                "claimName": claim_name(t, sts, index)}})
        spec["volumes"] = volumes
    return pod


def build_claim(template: Obj, sts: Obj, index: int) -> Obj:
    selector = (util.spec(sts).get("selector") or {}).get("matchLabels") or {}
    tmeta = template.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim_name(template, sts, index),
                         "labels": {**(tmeta.get("labels") or {}), **selector}},
            "spec": copy.deepcopy(template.get("spec") or {})}


def running_and_ready(pod: Obj) -> bool:
    return util.pod_phase(pod) == "Running" and util.is_pod_ready(pod) and \
        meta.deletion_timestamp(pod) is None


class StatefulSetController(BaseController):
    """Reconciles StatefulSets with their ordinal pods and claims."""

    def __init__(self, ctx: ControllerContext, workers: int = 5) -> None:
        super().__init__(ctx, NAME, workers)
        self.sts_informer = ctx.informers.informer("statefulsets", "apps")
        self.pod_informer = ctx.informers.informer("pods")
        self.pvc_informer = ctx.informers.informer("persistentvolumeclaims")
        self.rev_informer = ctx.informers.informer("controllerrevisions", "apps")
        owner_uid_index(self.pod_informer)
        owner_uid_index(self.rev_informer)
        self.statefulsets = ctx.client.resource("statefulsets", "apps")
        self.pods = ctx.client.resource("pods")
        self.claims = ctx.client.resource("persistentvolumeclaims")
        self.revisions = ctx.client.resource("controllerrevisions", "apps")
        self.recorder = ctx.recorder(NAME)
        self.sts_informer.add_handlers(on_add=lambda s: self.enqueue(meta.key(s)),
                                       on_update=lambda o, n: self.enqueue(meta.key(n)))
        enqueue_controller_of(self.pod_informer, "StatefulSet", self.enqueue)

    async def sync(self, key: str) -> None:
        sts = self.sts_informer.cache.get(key)
        if sts is None or meta.deletion_timestamp(sts) is not None:
            return
        update_rev = await self._ensure_revision(sts)
        current_rev = util.status(sts).get("currentRevision") or update_rev
        owned = self.pod_informer.cache.by_index("owner-uid", meta.uid(sts))
        by_ordinal = {o: p for p in owned if (o := ordinal(sts, p)) is not None}
        await self._reconcile(sts, by_ordinal, update_rev)
        await self._write_status(sts, by_ordinal, current_rev, update_rev)

    async def _ensure_revision(self, sts: Obj) -> str:
        name = revision_name(sts)
        existing = self.rev_informer.cache.by_index("owner-uid", meta.uid(sts))
        if any(meta.name(r) == name for r in existing):
            return name
        revision = max((int(r.get("revision") or 0) for r in existing), default=0) + 1
        body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": name, "labels": dict(
                    (util.spec(sts).get("selector") or {}).get("matchLabels") or {}),
                    "ownerReferences": [controller_ref(sts)]},
                "data": {"spec": {"template": du.template(sts)}}, "revision": revision}
        try:
            await self.revisions.create(body, namespace=meta.namespace(sts))
        except ApiError as err:
            if err.code != 409:
                raise
        return name

    async def _reconcile(self, sts: Obj, pods: dict[int, Obj], update_rev: str) -> None:
        replicas = du.replicas(sts)
        parallel = util.spec(sts).get("podManagementPolicy") == "Parallel"
        for index in range(replicas):
            pod = pods.get(index)
            if pod is not None and util.pod_phase(pod) in ("Failed", "Succeeded") and \
                    meta.deletion_timestamp(pod) is None:
                await self._delete(sts, pod)  # recreated on a later sync
                if not parallel:
                    return
                continue
            if pod is None:
                await self._create(sts, index, update_rev)
                if not parallel:
                    return
                continue
            if not parallel and not running_and_ready(pod):
                return
        condemned = sorted((o for o in pods if o >= replicas), reverse=True)
        for index in condemned:
            pod = pods[index]
            if meta.deletion_timestamp(pod) is None:
                await self._delete(sts, pod)
            if not parallel:
                return
        await self._rolling_update(sts, pods, update_rev, replicas)

    async def _rolling_update(self, sts: Obj, pods: dict[int, Obj], update_rev: str,
                              replicas: int) -> None:
        strategy = util.spec(sts).get("updateStrategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if not all(running_and_ready(pods[i]) for i in range(replicas) if i in pods):
            return
        for index in range(replicas - 1, partition - 1, -1):
            pod = pods.get(index)
            if pod is not None and meta.labels(pod).get(REVISION_LABEL) != update_rev:
                await self._delete(sts, pod)
                return

    async def _create(self, sts: Obj, index: int, revision: str) -> None:
        ns = meta.namespace(sts)
        pod = build_pod(sts, index, revision)
        for template in util.spec(sts).get("volumeClaimTemplates") or []:
            claim = build_claim(template, sts, index)
            if self.pvc_informer.cache.get(f"{ns}/{meta.name(claim)}") is not None:
                continue
            try:
                await self.claims.create(claim, namespace=ns)
                self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                    f"create Claim {meta.name(claim)} Pod {meta.name(pod)} "
                                    f"in StatefulSet {meta.name(sts)} success")
            except ApiError as err:
                if err.code != 409:
                    raise
        try:
            await self.pods.create(pod, namespace=ns)
        except ApiError as err:
            if err.code == 409:
                return
            self.recorder.event(sts, "Warning", "FailedCreate",
                                f"create Pod {meta.name(pod)} in StatefulSet {meta.name(sts)} "
                                f"failed error: {err}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {meta.name(pod)} in StatefulSet {meta.name(sts)} "
                            f"successful")

    async def _delete(self, sts: Obj, pod: Obj) -> None:
        try:
            await self.pods.delete(meta.name(pod), namespace=meta.namespace(pod))
        except ApiError as err:
            if err.code != 404:
                raise
            return
        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                            f"delete Pod {meta.name(pod)} in StatefulSet {meta.name(sts)} "
                            f"successful")

    async def _write_status(self, sts: Obj, pods: dict[int, Obj], current_rev: str,
                            update_rev: str) -> None:
        live = [p for p in pods.values() if meta.deletion_timestamp(p) is None]
        min_ready = int(util.spec(sts).get("minReadySeconds") or 0)
        updated = sum(1 for p in live if meta.labels(p).get(REVISION_LABEL) == update_rev)
        replicas = du.replicas(sts)
        if updated == replicas and len(live) == replicas:
            current_rev = update_rev
        status = {
            **util.status(sts),
            "observedGeneration": meta.generation(sts),
            "replicas": len(live),
            "readyReplicas": sum(1 for p in live if util.is_pod_ready(p)),
            "availableReplicas": sum(1 for p in live if util.is_pod_available(p, min_ready)),
            "currentReplicas": sum(1 for p in live
                                   if meta.labels(p).get(REVISION_LABEL) == current_rev),
            "updatedReplicas": updated,
            "currentRevision": current_rev,
            "updateRevision": update_rev,
            "collisionCount": int(util.status(sts).get("collisionCount") or 0),
        }
        if status == util.status(sts):
            return
        with ignore_not_found():
            await self.statefulsets.update({**sts, "status": status}, subresource="status")


def new_statefulset_controller(ctx: ControllerContext) -> StatefulSetController:
    return StatefulSetController(ctx, workers=ctx.config.concurrent_statefulset_syncs)
