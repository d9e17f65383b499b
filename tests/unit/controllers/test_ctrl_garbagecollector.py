"""Garbage collector decisions against fake caches and a fake client."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.garbagecollector import GarbageCollector, ObjectRef
from tinykube.controllers.testutil import make_context, new_pod, new_replicaset


def setup():
    ctx, client, informers, _ = make_context()
    return GarbageCollector(ctx), client, informers


def ref_of(resource, group, obj):
    return ObjectRef(group, resource, meta.namespace(obj), meta.name(obj), meta.uid(obj))


def deletes(client):
    return [(a.resource, a.name, a.options.get("propagation_policy"))
            for a in client.writes() if a.verb == "delete"]


async def test_dependent_of_missing_owner_is_deleted_in_background():
    gc, client, informers = setup()
    rs = new_replicaset("web")  # never stored: the owner is gone
    pod = new_pod("web-1", owner=rs)
    informers["pods"].add(pod)
    item = await gc.queue.get()
    assert item == ref_of("pods", "", pod)
    await gc.sync(item)
    assert deletes(client) == [("pods", "web-1", "Background")]
    delete = client.writes()[-1]
    assert delete.options["preconditions"] == {"uid": meta.uid(pod)}


async def test_live_owner_keeps_dependent_even_when_not_cached():
    gc, client, informers = setup()
    rs = new_replicaset("web")
    client.seed("replicasets", rs)  # exists in the API, cache lagging
    pod = new_pod("web-1", owner=rs)
    informers["pods"].seed(pod)
    await gc.sync(ref_of("pods", "", pod))
    assert deletes(client) == []


async def test_owner_recreated_under_same_name_counts_as_gone():
    gc, client, informers = setup()
    old = new_replicaset("web")
    pod = new_pod("web-1", owner=old)
    client.seed("replicasets", new_replicaset("web"))  # new uid
    informers["pods"].seed(pod)
    await gc.sync(ref_of("pods", "", pod))
    assert deletes(client) == [("pods", "web-1", "Background")]


async def test_dangling_reference_next_to_live_owner_is_removed():
    gc, client, informers = setup()
    live, gone = new_replicaset("live"), new_replicaset("gone")
    informers["replicasets"].seed(live)
    pod = new_pod("p")
    pod["metadata"]["ownerReferences"] = [meta.owner_reference(live, controller=False),
                                          meta.owner_reference(gone, controller=False)]
    client.seed("pods", pod)
    informers["pods"].seed(pod)
    await gc.sync(ref_of("pods", "", pod))
    assert deletes(client) == []
    [patch] = [a for a in client.writes() if a.verb == "patch"]
    assert [r["uid"] for r in patch.body["metadata"]["ownerReferences"]] == [meta.uid(live)]


async def test_foreground_deletion_waits_for_blocking_dependents():
    gc, client, informers = setup()
    rs = new_replicaset("web")
    rs["metadata"]["deletionTimestamp"] = meta.now()
    rs["metadata"]["finalizers"] = ["foregroundDeletion"]
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    pod = new_pod("web-1", owner=rs)
    client.seed("pods", pod)
    informers["pods"].seed(pod)
    await gc.sync(ref_of("replicasets", "apps", rs))
    assert client.writes() == []  # a blocking dependent exists: only enqueue it
    assert await gc.queue.get() == ref_of("pods", "", pod)
    await gc.sync(ref_of("pods", "", pod))
    assert deletes(client) == [("pods", "web-1", "Background")]
    informers["pods"].delete(pod)  # the deletion reaches the cache: owner re-checked
    item = await gc.queue.get()
    gc.queue.done(ref_of("pods", "", pod))
    while item != ref_of("replicasets", "apps", rs):
        item = await gc.queue.get()
    await gc.sync(item)
    stored = client.objects["replicasets"]["default/web"]
    assert "finalizers" not in stored["metadata"]


async def test_orphan_finalizer_strips_owner_refs_then_itself():
    gc, client, informers = setup()
    rs = new_replicaset("web")
    rs["metadata"]["deletionTimestamp"] = meta.now()
    rs["metadata"]["finalizers"] = ["orphan"]
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    pods = [new_pod(f"web-{i}", owner=rs) for i in range(2)]
    for pod in pods:
        client.seed("pods", pod)
        informers["pods"].seed(pod)
    await gc.sync(ref_of("replicasets", "apps", rs))
    for i in range(2):
        assert "ownerReferences" not in client.objects["pods"][f"default/web-{i}"]["metadata"]
    assert "finalizers" not in client.objects["replicasets"]["default/web"]["metadata"]
    assert deletes(client) == []


async def test_unknown_owner_kind_is_never_collected():
    gc, client, informers = setup()
    pod = new_pod("p")
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "example.com/v1", "kind": "Widget",
                                           "name": "w", "uid": "u1"}]
    informers["pods"].seed(pod)
    await gc.sync(ref_of("pods", "", pod))
    assert client.writes() == []


async def test_dependent_with_dependents_is_deleted_in_foreground_still_blocking():
    gc, client, informers = setup()
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "default", "uid": meta.new_uid(),
                           "deletionTimestamp": meta.now(),
                           "finalizers": ["foregroundDeletion"]}}
    informers["deployments"].seed(deploy)
    rs = new_replicaset("web-1")
    rs["metadata"]["ownerReferences"] = [meta.owner_reference(deploy)]
    client.seed("replicasets", rs)
    informers["replicasets"].seed(rs)
    informers["pods"].seed(new_pod("web-1-a", owner=rs))
    await gc.sync(ref_of("replicasets", "apps", rs))
    assert deletes(client) == [("replicasets", "web-1", "Foreground")]
    assert not [a for a in client.writes() if a.verb == "patch"]  # still blocks the owner
