"""The persistentvolume-binder controller, with a hostPath provisioner.

Claims bind to the smallest Available volume of their StorageClass that offers the
requested access modes, volume mode and capacity (a claim without a class uses the
default class, the one annotated ``storageclass.kubernetes.io/is-default-class``). When
none fits and the class's provisioner is ``tinykube.io/hostpath`` a volume is provisioned:
a directory ``<pv-host-path-dir>/pvc-<claim uid>`` and a PersistentVolume ``pvc-<uid>``
pre-bound to the claim (``WaitForFirstConsumer`` classes wait for the scheduler's
``volume.kubernetes.io/selected-node`` annotation). Binding sets the PV's ``claimRef`` and
the claim's ``volumeName`` with upstream's ``pv.kubernetes.io/bind-completed`` and
``bound-by-controller`` annotations and phases. A volume whose claim is gone is Released;
with reclaim policy Delete, provisioned volumes and their directories are removed. When no
StorageClass exists at all the controller creates the default class ``standard``.
"""

from __future__ import annotations

import copy
import os
import shutil
from fractions import Fraction
from typing import Any

from tinykube.api import meta, quantity
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext

Obj = dict[str, Any]
NAME = "persistentvolume-binder-controller"
PROVISIONER = "tinykube.io/hostpath"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
STORAGE_CLASS_KEY = "storageclass:standard"


def requested_storage(pvc: Obj) -> Fraction:
    req = ((util.spec(pvc).get("resources") or {}).get("requests") or {}).get("storage", "0")
    return quantity.parse_quantity(req)


def capacity(pv: Obj) -> Fraction:
    return quantity.parse_quantity((util.spec(pv).get("capacity") or {}).get("storage", "0"))


def pv_matches(pv: Obj, pvc: Obj, class_name: str) -> bool:
    spec, want = util.spec(pv), util.spec(pvc)
    ref = spec.get("claimRef")
    if ref and (ref.get("name") != meta.name(pvc) or ref.get("namespace") !=
                meta.namespace(pvc) or (ref.get("uid") and ref["uid"] != meta.uid(pvc))):
        return False
    if (spec.get("storageClassName") or "") != class_name:
        return False
    if (spec.get("volumeMode") or "Filesystem") != (want.get("volumeMode") or "Filesystem"):
        return False
    if not set(want.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    if meta.deletion_timestamp(pv) is not None:
        return False
    return capacity(pv) >= requested_storage(pvc)


def claim_ref(pvc: Obj) -> Obj:
    return {"kind": "PersistentVolumeClaim", "namespace": meta.namespace(pvc),
            "name": meta.name(pvc), "uid": meta.uid(pvc), "apiVersion": "v1",
            "resourceVersion": meta.resource_version(pvc)}


class PersistentVolumeController(BaseController):
    """Binds claims to volumes and provisions hostPath volumes."""

    def __init__(self, ctx: ControllerContext, host_path_dir: str) -> None:
        super().__init__(ctx, NAME, 1)  # one worker: two claims never race for one volume
        self.host_path_dir = host_path_dir
        self.pv_informer = ctx.informers.informer("persistentvolumes")
        self.pvc_informer = ctx.informers.informer("persistentvolumeclaims")
        self.sc_informer = ctx.informers.informer("storageclasses", "storage.k8s.io")
        self.pvs = ctx.client.resource("persistentvolumes")
        self.pvcs = ctx.client.resource("persistentvolumeclaims")
        self.classes = ctx.client.resource("storageclasses", "storage.k8s.io")
        self.recorder = ctx.recorder(NAME)
        self.pvc_informer.add_handlers(on_add=self._pvc_changed,
                                       on_update=lambda o, n: self._pvc_changed(n),
                                       on_delete=self._pvc_deleted)
        self.pv_informer.add_handlers(on_add=self._pv_changed,
                                      on_update=lambda o, n: self._pv_changed(n))
        self.sc_informer.add_handlers(on_add=lambda sc: self._all_pending())
        self.enqueue(STORAGE_CLASS_KEY)

    def _pvc_changed(self, pvc: Obj) -> None:
        self.enqueue(f"pvc:{meta.key(pvc)}")

    def _pvc_deleted(self, pvc: Obj) -> None:
        name = util.spec(pvc).get("volumeName")
        if name:
            self.enqueue(f"pv:{name}")

    def _pv_changed(self, pv: Obj) -> None:
        self.enqueue(f"pv:{meta.name(pv)}")
        ref = util.spec(pv).get("claimRef")
        if ref:
            self.enqueue(f"pvc:{ref.get('namespace')}/{ref.get('name')}")
        else:
            self._all_pending()

    def _all_pending(self) -> None:
        for pvc in self.pvc_informer.cache.list():
            if util.status(pvc).get("phase") != "Bound":
                self.enqueue(f"pvc:{meta.key(pvc)}")

    async def sync(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if key == STORAGE_CLASS_KEY:
            await self._ensure_default_class()
        elif kind == "pvc":
            pvc = self.pvc_informer.cache.get(name)
            if pvc is not None and meta.deletion_timestamp(pvc) is None:
                await self._sync_claim(pvc)
        elif kind == "pv":
            pv = self.pv_informer.cache.get(name)
            if pv is not None:
                await self._sync_volume(pv)

    # storage classes --------------------------------------------------------------------

    async def _ensure_default_class(self) -> None:
        if self.sc_informer.cache.list():
            return
        body = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "standard",
                             "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
                "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate"}
        try:
            await self.classes.create(body)
        except ApiError as err:
            if err.code != 409:
                raise

    def _class_of(self, pvc: Obj) -> tuple[str, Obj | None]:
        name = util.spec(pvc).get("storageClassName")
        if name is None:
            default = next((sc for sc in self.sc_informer.cache.list()
                            if meta.annotations(sc).get(DEFAULT_CLASS_ANNOTATION) == "true"),
                           None)
            return (meta.name(default), default) if default else ("", None)
        return name, self.sc_informer.cache.get(name) if name else None

    # claims -----------------------------------------------------------------------------

    async def _sync_claim(self, pvc: Obj) -> None:
        volume_name = util.spec(pvc).get("volumeName")
        if volume_name:
            pv = self.pv_informer.cache.get(volume_name)
            if pv is None:
                await self._claim_status(pvc, "Lost")
                return
            if not util.spec(pv).get("claimRef"):
                await self._bind_volume(pv, pvc)
            await self._claim_status(pvc, "Bound", pv)
            return
        class_name, sc = self._class_of(pvc)
        candidates = [pv for pv in self.pv_informer.cache.list() if pv_matches(pv, pvc,
                                                                               class_name)]
        if candidates:
            pv = min(candidates, key=lambda p: (0 if util.spec(p).get("claimRef") else 1,
                                                capacity(p), meta.name(p)))
            await self._bind_volume(pv, pvc)
            await self._bind_claim(pvc, pv)
            return
        if sc is not None and sc.get("provisioner") == PROVISIONER:
            await self._provision(pvc, sc, class_name)
            return
        await self._claim_status(pvc, "Pending")
        if not class_name:
            self.recorder.event(pvc, "Normal", "FailedBinding",
                                "no persistent volumes available for this claim and no "
                                "storage class is set")

    async def _bind_volume(self, pv: Obj, pvc: Obj) -> None:
        body = copy.deepcopy(pv)
        body["spec"]["claimRef"] = claim_ref(pvc)
        body.setdefault("metadata", {}).setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
        updated = await self.pvs.update(body)
        updated["status"] = {**util.status(updated), "phase": "Bound"}
        await self.pvs.update(updated, subresource="status")

    async def _bind_claim(self, pvc: Obj, pv: Obj) -> None:
        body = copy.deepcopy(pvc)
        body["spec"]["volumeName"] = meta.name(pv)
        ann = body["metadata"].setdefault("annotations", {})
        ann[BIND_COMPLETED] = "yes"
        ann[BOUND_BY_CONTROLLER] = "yes"
        updated = await self.pvcs.update(body)
        await self._claim_status(updated, "Bound", pv)

    async def _claim_status(self, pvc: Obj, phase: str, pv: Obj | None = None) -> None:
        status: Obj = {"phase": phase}
        if pv is not None and phase == "Bound":
            status["accessModes"] = util.spec(pv).get("accessModes") or []
            status["capacity"] = dict(util.spec(pv).get("capacity") or {})
        if all(util.status(pvc).get(k) == v for k, v in status.items()):
            return
        with ignore_not_found():
            await self.pvcs.update({**pvc, "status": {**util.status(pvc), **status}},
                                   subresource="status")

    async def _provision(self, pvc: Obj, sc: Obj, class_name: str) -> None:
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and \
                not meta.annotations(pvc).get(SELECTED_NODE):
            self.recorder.event(pvc, "Normal", "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
            await self._claim_status(pvc, "Pending")
            return
        name = f"pvc-{meta.uid(pvc)}"
        path = os.path.join(self.host_path_dir, name)
        os.makedirs(path, exist_ok=True)
        request = (util.spec(pvc).get("resources") or {}).get("requests") or {}
        body = {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
                "spec": {"capacity": {"storage": request.get("storage", "0")},
                         "accessModes": util.spec(pvc).get("accessModes") or ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                         "storageClassName": class_name,
                         "volumeMode": util.spec(pvc).get("volumeMode") or "Filesystem",
                         "hostPath": {"path": path, "type": "DirectoryOrCreate"},
                         "claimRef": claim_ref(pvc)}}
        try:
            await self.pvs.create(body)
        except ApiError as err:
            if err.code != 409:
                self.recorder.event(pvc, "Warning", "ProvisioningFailed",
                                    f"failed to provision volume with StorageClass "
                                    f'"{class_name}": {err}')
                raise
            return
        self.recorder.event(pvc, "Normal", "ProvisioningSucceeded",
                            f"Successfully provisioned volume {name}")

    # volumes ----------------------------------------------------------------------------

    async def _sync_volume(self, pv: Obj) -> None:
        ref = util.spec(pv).get("claimRef")
        if not ref:
            await self._volume_phase(pv, "Available")
            return
        pvc = self.pvc_informer.cache.get(f"{ref.get('namespace')}/{ref.get('name')}")
        if pvc is not None and (not ref.get("uid") or meta.uid(pvc) == ref["uid"]):
            if util.spec(pvc).get("volumeName") == meta.name(pv):
                await self._volume_phase(pv, "Bound")
            return
        try:  # the cache may lag a just-created claim: confirm before releasing
            fresh = await self.pvcs.get(ref.get("name", ""), namespace=ref.get("namespace"))
            if not ref.get("uid") or meta.uid(fresh) == ref["uid"]:
                return
        except ApiError as err:
            if err.code != 404:
                raise
        policy = util.spec(pv).get("persistentVolumeReclaimPolicy") or "Retain"
        if policy == "Delete":
            await self._delete_volume(pv)
        else:
            await self._volume_phase(pv, "Released")

    async def _delete_volume(self, pv: Obj) -> None:
        path = (util.spec(pv).get("hostPath") or {}).get("path")
        if meta.annotations(pv).get(PROVISIONED_BY) == PROVISIONER and path and \
                os.path.realpath(path).startswith(os.path.realpath(self.host_path_dir) + os.sep):
            try:
                shutil.rmtree(path)
            except FileNotFoundError:
                pass  # already gone: nothing to reclaim
            except OSError as err:
                self.recorder.event(pv, "Warning", "VolumeFailedDelete", str(err))
                raise
        with ignore_not_found():
            await self.pvs.delete(meta.name(pv))

    async def _volume_phase(self, pv: Obj, phase: str) -> None:
        if util.status(pv).get("phase") == phase:
            return
        with ignore_not_found():
            await self.pvs.update({**pv, "status": {**util.status(pv), "phase": phase}},
                                  subresource="status")


def new_persistentvolume_controller(ctx: ControllerContext) -> PersistentVolumeController:
    return PersistentVolumeController(ctx, ctx.config.pv_host_path_dir)
