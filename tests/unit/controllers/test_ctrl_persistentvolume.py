"""PV/PVC matching and binding decisions."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.persistentvolume import (PersistentVolumeController, pv_matches)
from tinykube.controllers.testutil import make_context


def pv(name, size, cls="manual", modes=("ReadWriteOnce",), claim=None):
    out = {"apiVersion": "v1", "kind": "PersistentVolume",
           "metadata": {"name": name, "uid": meta.new_uid(), "resourceVersion": "1"},
           "spec": {"capacity": {"storage": size}, "accessModes": list(modes),
                    "storageClassName": cls, "persistentVolumeReclaimPolicy": "Retain"},
           "status": {"phase": "Available"}}
    if claim:
        out["spec"]["claimRef"] = claim
    return out


def pvc(name, size, cls="manual", modes=("ReadWriteOnce",)):
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "default", "uid": meta.new_uid(),
                         "resourceVersion": "1"},
            "spec": {"accessModes": list(modes), "storageClassName": cls,
                     "resources": {"requests": {"storage": size}}}}


def test_matching_rules():
    claim = pvc("c", "1Gi")
    assert pv_matches(pv("a", "1Gi"), claim, "manual")
    assert not pv_matches(pv("b", "500Mi"), claim, "manual")
    assert not pv_matches(pv("c", "5Gi", cls="fast"), claim, "manual")
    assert not pv_matches(pv("d", "5Gi", modes=("ReadOnlyMany",)), claim, "manual")
    other = {"name": "x", "namespace": "default", "uid": "someone-else"}
    assert not pv_matches(pv("e", "5Gi", claim=other), claim, "manual")


async def test_binds_smallest_fitting_volume_both_ways():
    ctx, client, informers, _ = make_context()
    ctrl = PersistentVolumeController(ctx, "/nonexistent")
    volumes = [pv("big", "10Gi"), pv("small", "2Gi"), pv("tiny", "100Mi")]
    claim = pvc("c", "1Gi")
    client.seed("persistentvolumes", *volumes)
    client.seed("persistentvolumeclaims", claim)
    informers.mirror(client, "persistentvolumes", "persistentvolumeclaims")
    await ctrl.sync("pvc:default/c")
    bound_pv = client.objects["persistentvolumes"]["small"]
    assert bound_pv["spec"]["claimRef"]["uid"] == meta.uid(claim)
    assert bound_pv["status"]["phase"] == "Bound"
    stored = client.objects["persistentvolumeclaims"]["default/c"]
    assert stored["spec"]["volumeName"] == "small"
    assert stored["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert stored["status"]["phase"] == "Bound"
    assert stored["status"]["capacity"] == {"storage": "2Gi"}


async def test_ephemeral_volume_claims_are_created_owned_by_the_pod():
    from tinykube.controllers.ephemeral import EphemeralVolumeController
    from tinykube.controllers.testutil import FakeRecorder, new_pod

    ctx, client, informers, recorder = make_context()
    ctrl = EphemeralVolumeController(ctx)
    pod = new_pod("app")
    pod["spec"]["volumes"] = [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {
        "metadata": {"labels": {"type": "scratch"}},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}}}}]
    informers["pods"].add(pod)
    assert await ctrl.queue.get() == "default/app"
    await ctrl.sync("default/app")
    claim = client.objects["persistentvolumeclaims"]["default/app-scratch"]
    assert claim["metadata"]["ownerReferences"][0]["uid"] == meta.uid(pod)
    assert claim["metadata"]["labels"] == {"type": "scratch"}
    # someone else's claim of that name is never adopted
    other = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "app-scratch", "namespace": "default", "uid": "x"}}
    informers["persistentvolumeclaims"].seed(other)
    await ctrl.sync("default/app")
    assert recorder.events[-1][1] == "FailedCreate"
    assert isinstance(recorder, FakeRecorder)
