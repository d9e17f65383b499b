"""ResourceClient against the in-memory fake: paths, verbs, content types and errors."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.api.errors import ApiError
from tinykube.client.fake import serve_fake
from tinykube.client.rest import Client, decode_watch_event


@pytest.fixture
async def fake_client():
    async with serve_fake() as (fake, url):
        async with Client(url, token="s3cret") as client:
            yield fake, client


def test_paths_follow_the_api_layout():
    client = Client("http://127.0.0.1:1")
    assert client.resource("pods").path("ns1", "p", "binding") == \
        "/api/v1/namespaces/ns1/pods/p/binding"
    assert client.resource("po").path() == "/api/v1/pods"
    assert client.resource("deploy").path("d") == "/apis/apps/v1/namespaces/d/deployments"
    assert client.resource("nodes").path("ignored", "n1") == "/api/v1/nodes/n1"
    assert client.resource("leases").path("kube-node-lease", "n1") == \
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"


def test_unknown_resource_is_a_not_found_api_error():
    with pytest.raises(ApiError) as err:
        Client("http://127.0.0.1:1").resource("frobnicators")
    assert err.value.code == 404


async def test_crud_roundtrip_and_bearer_token(fake_client):
    fake, client = fake_client
    cms = client.resource("configmaps")
    created = await cms.create({"metadata": {"name": "a"}, "data": {"k": "v"}},
                               namespace="ns1")
    assert created["metadata"]["namespace"] == "ns1"
    assert fake.requests[-1].headers["Authorization"] == "Bearer s3cret"
    got = await cms.get("a", namespace="ns1")
    assert got["data"] == {"k": "v"}
    got["data"]["k"] = "w"
    updated = await cms.update(got)
    assert updated["data"]["k"] == "w"
    assert fake.requests[-1].method == "PUT"
    assert fake.requests[-1].path == "/api/v1/namespaces/ns1/configmaps/a"
    listed = await cms.list(namespace="ns1")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    await cms.delete("a", namespace="ns1", propagation_policy="Background",
                     grace_period_seconds=0)
    body = fake.requests[-1].body
    assert body["propagationPolicy"] == "Background" and body["gracePeriodSeconds"] == 0
    with pytest.raises(ApiError) as err:
        await cms.get("a", namespace="ns1")
    assert err.value.code == 404 and err.value.reason == "NotFound"


async def test_conflict_carries_the_servers_status(fake_client):
    _, client = fake_client
    cms = client.resource("configmaps")
    obj = await cms.create({"metadata": {"name": "c"}})
    await cms.update(obj)
    with pytest.raises(ApiError) as err:
        await cms.update(obj)  # stale resourceVersion
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert "the object has been modified" in str(err.value)


@pytest.mark.parametrize("patch_type,content_type", [
    ("strategic", "application/strategic-merge-patch+json"),
    ("merge", "application/merge-patch+json"),
    ("json", "application/json-patch+json"),
    ("apply", "application/apply-patch+yaml"),
])
async def test_patch_content_types(fake_client, patch_type, content_type):
    fake, client = fake_client
    cms = client.resource("configmaps")
    await cms.create({"metadata": {"name": "p"}}, namespace="default")
    fake.fail_next.append((422, "Invalid", "stop here"))  # body shape is the server's job
    with pytest.raises(ApiError):
        await cms.patch("p", {"data": {"x": "1"}}, namespace="default", patch_type=patch_type,
                        field_manager="me", force=True)
    req = fake.requests[-1]
    assert req.content_type == content_type
    assert req.query.get("fieldManager") == "me"
    assert req.query.get("force") == ("true" if patch_type == "apply" else None)


async def test_apply_requires_field_manager(fake_client):
    _, client = fake_client
    with pytest.raises(ValueError):
        await client.resource("configmaps").patch("x", {}, patch_type="apply")


async def test_subresource_and_list_paging(fake_client):
    fake, client = fake_client
    pods = client.resource("pods")
    for i in range(5):
        await pods.create({"metadata": {"name": f"p{i}", "labels": {"app": "a" if i % 2 else "b"}}})
    await pods.create_subresource("p1", "binding", {"target": {"kind": "Node", "name": "n"}},
                                  namespace="default")
    assert fake.requests[-1].path == "/api/v1/namespaces/default/pods/p1/binding"
    page = await pods.list(limit=2)
    assert len(page["items"]) == 2 and page["metadata"]["continue"]
    rest = await pods.list(limit=10, continue_=page["metadata"]["continue"])
    assert len(rest["items"]) == 3
    selected = await pods.list(label_selector="app=a")
    assert {i["metadata"]["name"] for i in selected["items"]} == {"p1", "p3"}


async def test_watch_streams_events_and_bookmarks(fake_client):
    fake, client = fake_client
    cms = client.resource("configmaps")
    start = (await cms.list())["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    async def consume():
        async for etype, obj in cms.watch(resource_version=start):
            seen.append((etype, obj["metadata"].get("name", "")))
            if len(seen) == 3:
                return

    task = asyncio.create_task(consume())
    await cms.create({"metadata": {"name": "w"}}, namespace="default")
    fake.bookmark("/api/v1/configmaps")
    await cms.delete("w", namespace="default")
    await asyncio.wait_for(task, 5)
    assert seen == [("ADDED", "w"), ("BOOKMARK", ""), ("DELETED", "w")]
    watch_req = [r for r in fake.requests if r.query.get("watch")][0]
    assert watch_req.query["allowWatchBookmarks"] == "true"


async def test_watch_error_event_raises_gone(fake_client):
    fake, client = fake_client
    cms = client.resource("configmaps")
    await cms.create({"metadata": {"name": "x"}}, namespace="default")
    fake.compact()
    with pytest.raises(ApiError) as err:
        async for _ in cms.watch(resource_version="1"):
            pass
    assert err.value.code == 410 and err.value.reason == "Expired"


def test_decode_watch_event_rejects_garbage_with_api_error():
    with pytest.raises(ApiError):
        decode_watch_event(b"{not json")


async def test_connection_failure_is_connection_error():
    async with Client("http://127.0.0.1:9") as client:
        with pytest.raises(ConnectionError):
            await client.resource("pods").list()
