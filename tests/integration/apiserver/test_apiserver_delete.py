"""Deletion: finalizers, deletionTimestamp, graceful pod deletion, propagation policies."""

from __future__ import annotations

CM_PATH = "/api/v1/namespaces/default/configmaps"
POD_PATH = "/api/v1/namespaces/default/pods"


def pod(name: str, node: str = "") -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


async def test_finalizers_keep_object_until_removed(apiserver):
    await apiserver.request("POST", CM_PATH, {"metadata": {"name": "f",
                                                          "finalizers": ["example.com/x"]}})
    status, obj = await apiserver.request("DELETE", f"{CM_PATH}/f")
    assert status == 200
    assert obj["metadata"]["deletionTimestamp"]
    assert obj["metadata"]["deletionGracePeriodSeconds"] == 0
    status, still = await apiserver.request("GET", f"{CM_PATH}/f")
    assert status == 200 and still["metadata"]["deletionTimestamp"]
    # deleting again changes nothing
    status, again = await apiserver.request("DELETE", f"{CM_PATH}/f")
    assert status == 200
    assert again["metadata"]["resourceVersion"] == still["metadata"]["resourceVersion"]
    status, _ = await apiserver.request("PATCH", f"{CM_PATH}/f",
                                        {"metadata": {"finalizers": None}},
                                        content_type="application/merge-patch+json")
    assert status == 200
    status, _ = await apiserver.request("GET", f"{CM_PATH}/f")
    assert status == 404


async def test_propagation_policies_add_gc_finalizers(apiserver):
    for name, policy, finalizer in (("fg", "Foreground", "foregroundDeletion"),
                                    ("or", "Orphan", "orphan")):
        await apiserver.request("POST", CM_PATH, {"metadata": {"name": name}})
        status, obj = await apiserver.request("DELETE", f"{CM_PATH}/{name}", {
            "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy})
        assert status == 200
        assert obj["metadata"]["finalizers"] == [finalizer]
        assert obj["metadata"]["deletionTimestamp"]
    await apiserver.request("POST", CM_PATH, {"metadata": {"name": "bg"}})
    status, body = await apiserver.request("DELETE", f"{CM_PATH}/bg?propagationPolicy=Background")
    assert status == 200 and body["status"] == "Success"


async def test_preconditions(apiserver):
    _, obj = await apiserver.request("POST", CM_PATH, {"metadata": {"name": "pre"}})
    status, body = await apiserver.request("DELETE", f"{CM_PATH}/pre", {
        "preconditions": {"uid": "not-the-uid"}})
    assert status == 409
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "pre": '
                                      'Precondition failed: UID in precondition: not-the-uid')
    status, _ = await apiserver.request("DELETE", f"{CM_PATH}/pre", {
        "preconditions": {"uid": obj["metadata"]["uid"],
                          "resourceVersion": obj["metadata"]["resourceVersion"]}})
    assert status == 200


async def test_unbound_pod_is_deleted_immediately(apiserver):
    await apiserver.request("POST", POD_PATH, pod("loose"))
    status, body = await apiserver.request("DELETE", f"{POD_PATH}/loose")
    assert status == 200 and body["kind"] == "Pod"
    status, _ = await apiserver.request("GET", f"{POD_PATH}/loose")
    assert status == 404


async def test_bound_pod_is_deleted_gracefully(apiserver):
    await apiserver.request("POST", POD_PATH, pod("bound", node="n1"))
    status, body = await apiserver.request("DELETE", f"{POD_PATH}/bound")
    assert status == 200
    assert body["metadata"]["deletionGracePeriodSeconds"] == 30
    assert body["metadata"]["deletionTimestamp"]
    status, still = await apiserver.request("GET", f"{POD_PATH}/bound")
    assert status == 200
    # the kubelet, once the containers stopped, deletes with a zero grace period
    status, _ = await apiserver.request("DELETE", f"{POD_PATH}/bound",
                                        {"gracePeriodSeconds": 0})
    assert status == 200
    status, _ = await apiserver.request("GET", f"{POD_PATH}/bound")
    assert status == 404


async def test_dry_run_delete_keeps_object(apiserver):
    await apiserver.request("POST", CM_PATH, {"metadata": {"name": "keep"}})
    status, _ = await apiserver.request("DELETE", f"{CM_PATH}/keep?dryRun=All")
    assert status == 200
    status, _ = await apiserver.request("GET", f"{CM_PATH}/keep")
    assert status == 200


async def test_namespace_termination_and_finalize(apiserver):
    await apiserver.request("POST", "/api/v1/namespaces", {"metadata": {"name": "gone"}})
    status, ns = await apiserver.request("DELETE", "/api/v1/namespaces/gone")
    assert status == 200
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]
    status, body = await apiserver.request("DELETE", "/api/v1/namespaces/gone")
    assert status == 409
    assert "ensuring all content is removed" in body["message"]
    ns["spec"]["finalizers"] = []
    status, finalized = await apiserver.request("PUT", "/api/v1/namespaces/gone/finalize", ns)
    assert status == 200 and finalized["spec"]["finalizers"] == []
    # as upstream: an update leaving a deleting namespace without finalizers removes it
    status, _ = await apiserver.request("GET", "/api/v1/namespaces/gone")
    assert status == 404


async def test_delete_collection_by_label(apiserver):
    for i in range(4):
        labels = {"group": "a" if i % 2 else "b"}
        await apiserver.request("POST", CM_PATH, {"metadata": {"name": f"dc{i}",
                                                              "labels": labels}})
    status, body = await apiserver.request("DELETE", CM_PATH + "?labelSelector=group%3Da")
    assert status == 200 and body["status"] == "Success"
    _, lst = await apiserver.request("GET", CM_PATH + "?labelSelector=group")
    assert sorted(i["metadata"]["name"] for i in lst["items"]) == ["dc0", "dc2"]


async def test_events_expire_after_their_ttl(apiserver_factory):
    import asyncio

    import aiohttp
    import orjson

    server = await apiserver_factory(event_ttl_seconds=1)
    path = "/api/v1/namespaces/default/events"
    status, _ = await server.request("POST", path, {
        "metadata": {"name": "short-lived"}, "reason": "Test", "message": "m", "type": "Normal",
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}})
    assert status == 201
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + path + "?watch=1&resourceVersion=0") as resp:

            async def deleted() -> dict:
                while True:
                    event = orjson.loads(await resp.content.readline())
                    if event["type"] == "DELETED":
                        return event

            event = await asyncio.wait_for(deleted(), 30)
    assert event["object"]["metadata"]["name"] == "short-lived"
