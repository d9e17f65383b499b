"""The persistentvolume binder and hostPath provisioner against a real API server."""

from __future__ import annotations

import os

from tinykube.controllers.testutil import RunningControllers, wait_for_object


def claim(name, size="1Gi", **spec):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": size}}, **spec}}


async def test_default_class_provisions_binds_and_reclaims(api, tmp_path):
    pvcs, pvs = api.resource("persistentvolumeclaims"), api.resource("persistentvolumes")
    async with RunningControllers(api, ["persistentvolume-binder"],
                                  pv_host_path_dir=str(tmp_path)):
        sc = await wait_for_object(api.resource("storageclasses", "storage.k8s.io"),
                                   "standard", lambda o: o is not None)
        assert sc["metadata"]["annotations"][
            "storageclass.kubernetes.io/is-default-class"] == "true"
        await pvcs.create(claim("data"), namespace="default")
        bound = await wait_for_object(pvcs, "data", lambda c: c and (
            c.get("status") or {}).get("phase") == "Bound", namespace="default")
        pv_name = bound["spec"]["volumeName"]
        assert pv_name == f"pvc-{bound['metadata']['uid']}"
        assert bound["status"]["capacity"] == {"storage": "1Gi"}
        pv = await wait_for_object(pvs, pv_name, lambda v: v and (
            v.get("status") or {}).get("phase") == "Bound")
        path = pv["spec"]["hostPath"]["path"]
        assert os.path.isdir(path) and path.startswith(str(tmp_path))
        await pvcs.delete("data", namespace="default")
        await wait_for_object(pvs, pv_name, lambda v: v is None, timeout=15)
        assert not os.path.exists(path)


async def test_claim_binds_to_smallest_fitting_static_volume(api, tmp_path):
    pvs, pvcs = api.resource("persistentvolumes"), api.resource("persistentvolumeclaims")
    for name, size in (("big", "10Gi"), ("small", "2Gi"), ("tiny", "500Mi")):
        await pvs.create({"apiVersion": "v1", "kind": "PersistentVolume",
                          "metadata": {"name": name},
                          "spec": {"capacity": {"storage": size},
                                   "accessModes": ["ReadWriteOnce"],
                                   "persistentVolumeReclaimPolicy": "Retain",
                                   "storageClassName": "manual",
                                   "hostPath": {"path": str(tmp_path / name)}}})
    async with RunningControllers(api, ["persistentvolume-binder"],
                                  pv_host_path_dir=str(tmp_path)):
        await pvcs.create(claim("c", "1Gi", storageClassName="manual"), namespace="default")
        bound = await wait_for_object(pvcs, "c", lambda o: o and (
            o.get("status") or {}).get("phase") == "Bound", namespace="default")
        assert bound["spec"]["volumeName"] == "small"
        await pvcs.delete("c", namespace="default")
        await wait_for_object(pvs, "small", lambda v: v and (
            v.get("status") or {}).get("phase") == "Released")
