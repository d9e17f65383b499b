"""Namespace controller: content deletion, conditions, finalize."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.controllers.namespace import NamespaceController, content_conditions
from tinykube.controllers.testutil import make_context, new_pod, new_replicaset


def terminating_namespace(name="doomed"):
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": meta.new_uid(), "deletionTimestamp": meta.now()},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}}


def setup(ns):
    ctx, client, informers, _ = make_context()
    ctrl = NamespaceController(ctx)
    client.seed("namespaces", ns)
    informers["namespaces"].seed(ns)
    return ctrl, client, informers


async def test_deletes_content_then_finalizes():
    ns = terminating_namespace()
    ctrl, client, informers = setup(ns)
    client.seed("pods", new_pod("a", namespace="doomed"), new_pod("b", namespace="doomed"))
    client.seed("replicasets", new_replicaset("rs", namespace="doomed"))
    client.seed("pods", new_pod("keep", namespace="default"))
    await ctrl.sync("doomed")
    deleted = sorted((a.resource, a.name) for a in client.writes() if a.verb == "delete")
    assert deleted == [("pods", "a"), ("pods", "b"), ("replicasets", "rs")]
    assert "default/keep" in client.objects["pods"]
    [finalize] = [a for a in client.writes() if a.subresource == "finalize"]
    assert finalize.body["spec"]["finalizers"] == []
    [status] = [a for a in client.writes() if a.subresource == "status"]
    conds = {c["type"]: c for c in status.body["status"]["conditions"]}
    assert conds["NamespaceContentRemaining"]["reason"] == "ContentRemoved"
    assert conds["NamespaceDeletionContentFailure"]["status"] == "False"


async def test_failed_deletion_reports_conditions_and_does_not_finalize():
    ns = terminating_namespace()
    ctrl, client, informers = setup(ns)
    client.seed("pods", new_pod("a", namespace="doomed"))
    client.failures[("delete", "pods")] = ApiError(500, "InternalError", "boom")
    await ctrl.sync("doomed")
    assert not [a for a in client.writes() if a.subresource == "finalize"]
    stored = client.objects["namespaces"]["doomed"]["status"]["conditions"]
    conds = {c["type"]: c for c in stored}
    assert conds["NamespaceDeletionContentFailure"]["status"] == "True"
    assert conds["NamespaceDeletionContentFailure"]["message"] == \
        "Failed to delete all resource types, 1 remaining: pods"
    assert conds["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: pods has 1 resource instances"


def test_finalizer_condition_message():
    conds = {c["type"]: c for c in content_conditions({"pods": 2}, {"example.com/x": 2}, [])}
    assert conds["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/x in 2 resource " \
        "instances"
    assert conds["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"


async def test_active_namespace_is_left_alone():
    ns = terminating_namespace()
    del ns["metadata"]["deletionTimestamp"]
    ctrl, client, informers = setup(ns)
    client.seed("pods", new_pod("a", namespace="doomed"))
    await ctrl.sync("doomed")
    assert client.writes() == []


async def test_deleting_content_in_terminating_namespace_requeues_it():
    ns = terminating_namespace()
    ctrl, client, informers = setup(ns)
    pod = new_pod("a", namespace="doomed")
    informers["pods"].seed(pod)
    informers["pods"].delete(pod)
    assert await ctrl.queue.get() == "doomed"
