"""StatefulSet ordering, stable identities, claims, scale-down and rolling update."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.statefulset import REVISION_LABEL, StatefulSetController
from tinykube.controllers.testutil import make_context, ready_status

KEY = "default/web"


def new_sts(replicas=3, policy="OrderedReady", image="nginx"):
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": meta.new_uid(),
                         "generation": 1},
            "spec": {"replicas": replicas, "serviceName": "nginx",
                     "podManagementPolicy": policy,
                     "selector": {"matchLabels": {"app": "nginx"}},
                     "template": {"metadata": {"labels": {"app": "nginx"}},
                                  "spec": {"containers": [{"name": "nginx", "image": image}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                         "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}]},
            "status": {}}


def setup(sts):
    ctx, client, informers, recorder = make_context()
    ctrl = StatefulSetController(ctx)
    client.seed("statefulsets", sts)
    return ctrl, client, informers, recorder


async def step(ctrl, client, informers, ready=True):
    for pod in client.objects.get("pods", {}).values():
        if ready and not pod.get("status", {}).get("conditions"):
            pod["status"] = ready_status(pod, "10.0.0.1")
            pod["metadata"]["resourceVersion"] = client.bump()
    informers.mirror(client, "statefulsets", "pods", "persistentvolumeclaims",
                     "controllerrevisions")
    await ctrl.sync(KEY)


def pod_names(client):
    return sorted(meta.name(p) for p in client.objects.get("pods", {}).values())


async def test_ordered_ready_creates_one_at_a_time_with_identity_and_claims():
    ctrl, client, informers, recorder = setup(new_sts())
    await step(ctrl, client, informers, ready=False)
    assert pod_names(client) == ["web-0"]
    await step(ctrl, client, informers, ready=False)
    assert pod_names(client) == ["web-0"]  # web-0 not ready yet
    for _ in range(3):
        await step(ctrl, client, informers)
    assert pod_names(client) == ["web-0", "web-1", "web-2"]
    pod = client.objects["pods"]["default/web-1"]
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "nginx"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"
    assert pod["spec"]["volumes"] == [{"name": "www",
                                       "persistentVolumeClaim": {"claimName": "www-web-1"}}]
    assert sorted(client.objects["persistentvolumeclaims"]) == [
        "default/www-web-0", "default/www-web-1", "default/www-web-2"]
    await step(ctrl, client, informers)
    status = client.objects["statefulsets"][KEY]["status"]
    assert status["readyReplicas"] == 3 and status["currentReplicas"] == 3
    assert status["currentRevision"] == status["updateRevision"]
    assert ("Normal", "SuccessfulCreate",
            "create Pod web-0 in StatefulSet web successful") in recorder.events


async def test_parallel_creates_all_at_once():
    ctrl, client, informers, _ = setup(new_sts(policy="Parallel"))
    await step(ctrl, client, informers, ready=False)
    assert pod_names(client) == ["web-0", "web-1", "web-2"]


async def test_scale_down_removes_highest_ordinal_first():
    ctrl, client, informers, _ = setup(new_sts())
    for _ in range(4):
        await step(ctrl, client, informers)
    client.objects["statefulsets"][KEY]["spec"]["replicas"] = 1
    await step(ctrl, client, informers)
    assert pod_names(client) == ["web-0", "web-1"]
    await step(ctrl, client, informers)
    assert pod_names(client) == ["web-0"]
    assert len(client.objects["persistentvolumeclaims"]) == 3  # claims are retained


async def test_rolling_update_replaces_from_the_highest_ordinal():
    ctrl, client, informers, _ = setup(new_sts(replicas=2))
    for _ in range(3):
        await step(ctrl, client, informers)
    old_rev = client.objects["pods"]["default/web-0"]["metadata"]["labels"][REVISION_LABEL]
    sts = client.objects["statefulsets"][KEY]
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    await step(ctrl, client, informers)
    assert pod_names(client) == ["web-0"]  # web-1 deleted first
    for _ in range(4):
        await step(ctrl, client, informers)
    revs = {meta.name(p): p["metadata"]["labels"][REVISION_LABEL]
            for p in client.objects["pods"].values()}
    assert set(revs) == {"web-0", "web-1"} and old_rev not in revs.values()
    assert len(client.objects["controllerrevisions"]) == 2
