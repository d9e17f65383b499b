"""Deployment controller: ReplicaSet naming, rolling/recreate arithmetic, status, history."""

from __future__ import annotations

import copy

from tinykube.api import meta
from tinykube.controllers import deployment_util as du
from tinykube.controllers.deployment import DeploymentController
from tinykube.controllers.testutil import make_context, new_deployment

KEY = "default/web"


def setup(d):
    ctx, client, informers, recorder = make_context()
    ctrl = DeploymentController(ctx)
    client.seed("deployments", d)
    informers.mirror(client, "deployments")
    return ctrl, client, informers, recorder


def settle_replicasets(client, ready=True):
    """What the replicaset controller and kubelets would do: every RS at its size, ready."""
    for rs in client.objects.get("replicasets", {}).values():
        n = du.replicas(rs) if ready else 0
        rs["status"] = {"replicas": du.replicas(rs), "readyReplicas": n, "availableReplicas": n,
                        "fullyLabeledReplicas": du.replicas(rs),
                        "observedGeneration": meta.generation(rs)}
        rs["metadata"]["resourceVersion"] = client.bump()


async def step(ctrl, client, informers, ready=True):
    settle_replicasets(client, ready)
    informers.mirror(client, "deployments", "replicasets")
    await ctrl.sync(KEY)
    informers.mirror(client, "deployments", "replicasets")


def rs_list(client):
    return sorted(client.objects.get("replicasets", {}).values(),
                  key=lambda r: du.revision(r))


def test_hash_is_stable_and_safe():
    tmpl = new_deployment("web")["spec"]["template"]
    h = du.compute_hash(tmpl)
    assert h == du.compute_hash(copy.deepcopy(tmpl))
    assert h != du.compute_hash(tmpl, 1)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    other = copy.deepcopy(tmpl)
    other["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert du.compute_hash(other) != h


def test_fenceposts():
    d = new_deployment("web", 10)
    assert du.resolve_fenceposts(d) == (3, 2)  # surge rounds up, unavailable down
    d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": 0, "maxUnavailable": 0}
    assert du.resolve_fenceposts(d) == (0, 1)
    d["spec"]["strategy"] = {"type": "Recreate"}
    assert du.max_surge(d) == 0 and du.max_unavailable(d) == 0


async def test_first_sync_creates_named_replicaset_with_revision():
    d = new_deployment("web", 3)
    ctrl, client, informers, recorder = setup(d)
    await ctrl.sync(KEY)
    [rs] = client.objects["replicasets"].values()
    h = du.compute_hash(d["spec"]["template"])
    assert meta.name(rs) == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == h
    assert rs["spec"]["replicas"] == 3
    ann = rs["metadata"]["annotations"]
    assert ann[du.REVISION] == "1" and ann[du.DESIRED_REPLICAS] == "3"
    assert ann[du.MAX_REPLICAS] == "4"
    ref = rs["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "Deployment" and ref["controller"] and ref["blockOwnerDeletion"]
    assert ("Normal", "ScalingReplicaSet", f"Scaled up replica set web-{h} from 0 to 3") in \
        recorder.events
    dep = client.objects["deployments"][KEY]
    assert dep["metadata"]["annotations"][du.REVISION] == "1"
    cond = du.get_condition(dep["status"], "Progressing")
    assert cond["reason"] == du.NEW_RS_CREATED


async def test_status_reaches_complete_with_conditions():
    d = new_deployment("web", 3)
    ctrl, client, informers, _ = setup(d)
    await ctrl.sync(KEY)
    for _ in range(3):
        await step(ctrl, client, informers)
    status = client.objects["deployments"][KEY]["status"]
    assert status["replicas"] == status["updatedReplicas"] == status["availableReplicas"] == 3
    assert status["unavailableReplicas"] == 0 and status["observedGeneration"] == 1
    avail = du.get_condition(status, "Available")
    assert avail["status"] == "True" and avail["reason"] == "MinimumReplicasAvailable"
    prog = du.get_condition(status, "Progressing")
    assert prog["reason"] == "NewReplicaSetAvailable"
    assert prog["message"].endswith("has successfully progressed.")


async def test_rolling_update_honours_surge_and_unavailable():
    d = new_deployment("web", 4, strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 1}})
    ctrl, client, informers, _ = setup(d)
    await ctrl.sync(KEY)
    for _ in range(3):
        await step(ctrl, client, informers)
    dep = client.objects["deployments"][KEY]
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    dep["metadata"]["generation"] = 2
    for _ in range(30):
        await step(ctrl, client, informers)
        rss = rs_list(client)
        total = sum(du.replicas(r) for r in rss)
        assert total <= 4 + 1
        # pods that stay available after this step's scale-downs
        available = sum(min(du.replicas(r), int((r.get("status") or {}).get(
            "availableReplicas") or 0)) for r in rss)
        assert available >= 4 - 1
        if len(rss) == 2 and du.replicas(rss[0]) == 0 and du.replicas(rss[1]) == 4:
            break
    else:
        raise AssertionError(f"rollout did not finish: {[du.replicas(r) for r in rss]}")
    old, new = rss
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert du.revision(new) == 2
    await step(ctrl, client, informers)
    status = client.objects["deployments"][KEY]["status"]
    assert status["updatedReplicas"] == 4 and status["observedGeneration"] == 2


async def test_rollback_reuses_old_replicaset_and_bumps_its_revision():
    d = new_deployment("web", 2)
    ctrl, client, informers, _ = setup(d)
    original = copy.deepcopy(d["spec"]["template"])
    for image in ("nginx:1.26", None):
        for _ in range(12):
            await step(ctrl, client, informers)
        if image:
            dep = client.objects["deployments"][KEY]
            dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
    # what `kubectl rollout undo` does: put revision 1's template back
    client.objects["deployments"][KEY]["spec"]["template"] = original
    for _ in range(12):
        await step(ctrl, client, informers)
    rss = rs_list(client)
    assert len(rss) == 2
    newest = rss[-1]
    assert newest["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert du.revision(newest) == 3
    assert newest["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
    assert du.replicas(newest) == 2 and du.replicas(rss[0]) == 0


async def test_recreate_scales_old_to_zero_before_creating_new():
    d = new_deployment("web", 3, strategy={"type": "Recreate"})
    ctrl, client, informers, _ = setup(d)
    for _ in range(3):
        await step(ctrl, client, informers)
    dep = client.objects["deployments"][KEY]
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    informers.mirror(client, "deployments", "replicasets")
    await ctrl.sync(KEY)
    rss = rs_list(client)
    assert len(rss) == 1 and du.replicas(rss[0]) == 0  # old scaled down, new not yet made
    informers.mirror(client, "deployments", "replicasets")
    await ctrl.sync(KEY)  # old RS status still shows 3 pods: keep waiting
    assert len(rs_list(client)) == 1
    for _ in range(3):
        await step(ctrl, client, informers)
    rss = rs_list(client)
    assert [du.replicas(r) for r in rss] == [0, 3]


async def test_scaling_event_resizes_active_replicaset():
    d = new_deployment("web", 3)
    ctrl, client, informers, recorder = setup(d)
    for _ in range(3):
        await step(ctrl, client, informers)
    client.objects["deployments"][KEY]["spec"]["replicas"] = 5
    await step(ctrl, client, informers)
    [rs] = rs_list(client)
    assert du.replicas(rs) == 5
    assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "5"
    assert any(m.startswith(f"Scaled up replica set {meta.name(rs)} from 3 to 5")
               for _, _, m in recorder.events)


async def test_revision_history_limit_deletes_oldest():
    d = new_deployment("web", 1, strategy={"type": "Recreate"})
    d["spec"]["revisionHistoryLimit"] = 1
    ctrl, client, informers, _ = setup(d)
    for image in ("a", "b", "c"):
        dep = client.objects["deployments"][KEY]
        dep["spec"]["template"]["spec"]["containers"][0]["image"] = image
        for _ in range(6):
            await step(ctrl, client, informers)
    images = [r["spec"]["template"]["spec"]["containers"][0]["image"] for r in rs_list(client)]
    assert images == ["b", "c"]


async def test_paused_deployment_does_not_roll_and_reports_paused():
    d = new_deployment("web", 2)
    ctrl, client, informers, _ = setup(d)
    for _ in range(3):
        await step(ctrl, client, informers)
    dep = client.objects["deployments"][KEY]
    dep["spec"]["paused"] = True
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    for _ in range(3):
        await step(ctrl, client, informers)
    assert len(rs_list(client)) == 1
    cond = du.get_condition(client.objects["deployments"][KEY]["status"], "Progressing")
    assert cond["reason"] == "DeploymentPaused" and cond["status"] == "Unknown"
    client.objects["deployments"][KEY]["spec"]["paused"] = False
    await step(ctrl, client, informers)
    assert len(rs_list(client)) == 2


async def test_progress_deadline_exceeded():
    d = new_deployment("web", 2)
    d["spec"]["progressDeadlineSeconds"] = 5
    ctrl, client, informers, _ = setup(d)
    await ctrl.sync(KEY)
    await step(ctrl, client, informers, ready=False)  # pods exist but never become ready
    await step(ctrl, client, informers, ready=False)
    cond = du.get_condition(client.objects["deployments"][KEY]["status"], "Progressing")
    assert cond["reason"] == "ReplicaSetUpdated"
    cond["lastUpdateTime"] = "2020-01-01T00:00:00Z"  # the deadline has passed since
    await step(ctrl, client, informers, ready=False)
    cond = du.get_condition(client.objects["deployments"][KEY]["status"], "Progressing")
    assert cond["status"] == "False" and cond["reason"] == "ProgressDeadlineExceeded"


def test_null_creation_timestamp_is_the_same_template():
    tmpl = new_deployment("web")["spec"]["template"]
    sent = copy.deepcopy(tmpl)
    sent["metadata"]["creationTimestamp"] = None  # as `kubectl rollout undo` sends it
    assert du.equal_ignore_hash(tmpl, sent)
    assert du.compute_hash(tmpl) == du.compute_hash(sent)
