"""ReplicaSet controller sync, driven through fake caches and a fake pod control."""

from __future__ import annotations

import datetime as dt

import pytest

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.controllers.replicaset import (KIND_RC, ReplicaSetController, calculate_status,
                                             pods_to_delete)
from tinykube.controllers.testutil import FakePodControl, make_context, new_pod, new_replicaset


def setup(kind=None):
    ctx, client, informers, recorder = make_context()
    control = FakePodControl()
    kw = {"pod_control": control}
    if kind is not None:
        kw["kind"] = kind
    ctrl = ReplicaSetController(ctx, **kw)
    return ctrl, control, client, informers


async def test_creates_missing_pods_with_owner_and_generate_name():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web-rs", 3, labels={"app": "web"})
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    informers["pods"].seed(new_pod("web-rs-aaaaa", labels={"app": "web"}, owner=rs))
    await ctrl.sync("default/web-rs")
    assert len(control.created) == 2
    pod = control.created[0]
    assert pod["metadata"]["generateName"] == "web-rs-"
    assert pod["metadata"]["labels"] == {"app": "web"}
    ref = pod["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "ReplicaSet" and ref["uid"] == meta.uid(rs)
    assert ref["controller"] is True and ref["blockOwnerDeletion"] is True
    assert ctrl.expectations.pending("default/web-rs") == (2, 0)


async def test_expectations_block_a_second_create_until_observed():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web-rs", 2)
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    await ctrl.sync("default/web-rs")
    assert len(control.created) == 2
    await ctrl.sync("default/web-rs")  # cache still empty: must not create again
    assert len(control.created) == 2
    for pod in control.created:
        informers["pods"].add(pod)  # the informer sees the creations
    assert ctrl.expectations.satisfied("default/web-rs")
    await ctrl.sync("default/web-rs")
    assert len(control.created) == 2


async def test_burst_cap_and_slow_start():
    ctrl, control, client, informers = setup()
    ctrl.burst_replicas = 10
    rs = new_replicaset("big", 100)
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    await ctrl.sync("default/big")
    assert len(control.created) == 10


async def test_slow_start_stops_after_failing_batch_and_sets_replica_failure():
    ctrl, control, client, informers = setup()
    control.create_error = ApiError(403, "Forbidden", 'pods "x" is forbidden: exceeded quota')
    control.create_limit = 3  # batches 1, 2 succeed; the batch of 4 fails
    rs = new_replicaset("q", 20)
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    with pytest.raises(ApiError):
        await ctrl.sync("default/q")
    assert len(control.created) == 3
    assert ctrl.expectations.pending("default/q") == (3, 0)  # skipped creations forgotten
    status = client.objects["replicasets"]["default/q"]["status"]
    cond = status["conditions"][0]
    assert cond["type"] == "ReplicaFailure" and cond["reason"] == "FailedCreate"
    assert "exceeded quota" in cond["message"]


async def test_deletes_extra_pods_ranked_unscheduled_first():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web", 2)
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    running = [new_pod(f"web-r{i}", labels={"app": "web"}, owner=rs, node="n1",
                       phase="Running", ready=True) for i in range(2)]
    pending = new_pod("web-p", labels={"app": "web"}, owner=rs)
    informers["pods"].seed(*running, pending)
    await ctrl.sync("default/web")
    assert control.deleted == ["default/web-p"]
    assert ctrl.expectations.pending("default/web") == (0, 1)
    informers["pods"].delete(pending)
    assert ctrl.expectations.satisfied("default/web")


def test_deletion_ranking_order():
    rs = new_replicaset("web", 1)
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    ready_long = new_pod("ready-long", owner=rs, node="n1", phase="Running", ready=True,
                         ready_at=old)
    ready_new = new_pod("ready-new", owner=rs, node="n2", phase="Running", ready=True)
    not_ready = new_pod("not-ready", owner=rs, node="n3", phase="Running")
    pending = new_pod("pending", owner=rs, node="n4", phase="Pending")
    unscheduled = new_pod("unscheduled", owner=rs)
    pods = [ready_long, ready_new, not_ready, pending, unscheduled]
    order = [meta.name(p) for p in pods_to_delete(pods, pods, 4)]
    assert order == ["unscheduled", "pending", "not-ready", "ready-new"]


def test_deletion_prefers_doubled_up_nodes_and_low_cost():
    rs = new_replicaset("web", 1)
    a = new_pod("a", owner=rs, node="n1", phase="Running", ready=True)
    b = new_pod("b", owner=rs, node="n1", phase="Running", ready=True)
    c = new_pod("c", owner=rs, node="n2", phase="Running", ready=True)
    for p in (a, b, c):
        p["status"]["conditions"][0]["lastTransitionTime"] = "2020-01-01T00:00:00Z"
    b["metadata"]["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": "10"}
    assert [meta.name(p) for p in pods_to_delete([a, b, c], [a, b, c], 1)] == ["a"]


async def test_adopts_matching_orphans_and_releases_mismatches():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web", 2)
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    orphan = new_pod("orphan", labels={"app": "web"})
    relabelled = new_pod("relabelled", labels={"app": "other"}, owner=rs)
    foreign = new_pod("foreign", labels={"app": "web"})
    foreign["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "other-uid",
         "controller": True}]
    informers["pods"].seed(orphan, relabelled, foreign)
    await ctrl.sync("default/web")
    patched = dict(control.patched)
    adopt = patched["default/orphan"]["metadata"]["ownerReferences"]
    assert adopt[0]["uid"] == meta.uid(rs) and adopt[0]["controller"] is True
    assert patched["default/relabelled"]["metadata"]["ownerReferences"] is None
    assert "default/foreign" not in patched
    assert len(control.created) == 1  # the adopted orphan counts


async def test_does_not_adopt_when_owner_is_being_deleted():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web", 2)
    rs["metadata"]["deletionTimestamp"] = meta.now()
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    informers["pods"].seed(new_pod("orphan", labels={"app": "web"}))
    await ctrl.sync("default/web")
    assert control.patched == [] and control.created == []


async def test_status_counts_and_observed_generation():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web", 3, generation=4, min_ready_seconds=30)
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    long_ago = "2020-01-01T00:00:00Z"
    informers["pods"].seed(
        new_pod("a", labels={"app": "web"}, owner=rs, phase="Running", ready=True,
                ready_at=long_ago),
        new_pod("b", labels={"app": "web"}, owner=rs, phase="Running", ready=True),
        new_pod("c", labels={"app": "web", "extra": "1"}, owner=rs))
    await ctrl.sync("default/web")
    status = client.objects["replicasets"]["default/web"]["status"]
    assert status == {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 2,
                      "availableReplicas": 1, "observedGeneration": 4}
    writes = len(client.writes("replicasets"))
    informers["replicasets"].seed(client.objects["replicasets"]["default/web"])
    await ctrl.sync("default/web")
    assert len(client.writes("replicasets")) == writes  # unchanged status: no write


def test_calculate_status_clears_replica_failure():
    rs = new_replicaset("web", 1)
    rs["status"] = {"conditions": [{"type": "ReplicaFailure", "status": "True"}]}
    assert "conditions" not in calculate_status(rs, [], None, 0)


async def test_terminating_and_finished_pods_do_not_count():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web", 2)
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    gone = new_pod("gone", labels={"app": "web"}, owner=rs)
    gone["metadata"]["deletionTimestamp"] = meta.now()
    done = new_pod("done", labels={"app": "web"}, owner=rs, phase="Succeeded")
    informers["pods"].seed(gone, done)
    await ctrl.sync("default/web")
    assert len(control.created) == 2


async def test_deleted_replicaset_forgets_expectations():
    ctrl, control, client, informers = setup()
    ctrl.expectations.expect_creations("default/nope", 3)
    await ctrl.sync("default/nope")
    assert ctrl.expectations.pending("default/nope") == (0, 0)


async def test_pod_handlers_enqueue_the_owner():
    ctrl, control, client, informers = setup()
    rs = new_replicaset("web", 1)
    informers["replicasets"].seed(rs)
    pod = new_pod("p", labels={"app": "web"}, owner=rs)
    ctrl.expectations.expect_creations("default/web", 1)
    informers["pods"].add(pod)
    assert ctrl.expectations.satisfied("default/web")
    assert ctrl.queue.len() == 1
    orphan = new_pod("o", labels={"app": "web"})
    informers["pods"].add(orphan)
    assert await ctrl.queue.get() == "default/web"


async def test_replication_controller_uses_map_selector():
    ctrl, control, client, informers = setup(KIND_RC)
    rc = new_replicaset("rc", 2)
    rc["apiVersion"], rc["kind"] = "v1", "ReplicationController"
    rc["spec"]["selector"] = {"app": "rc"}
    client.seed("replicationcontrollers", rc)
    informers["replicationcontrollers"].seed(rc)
    informers["pods"].seed(new_pod("x", labels={"app": "rc"}, owner=rc))
    await ctrl.sync("default/rc")
    assert len(control.created) == 1
    assert control.created[0]["metadata"]["ownerReferences"][0]["kind"] == \
        "ReplicationController"
