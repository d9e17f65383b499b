"""Watch semantics over a real chunked HTTP stream."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

import aiohttp
import orjson

CM_PATH = "/api/v1/namespaces/default/configmaps"
TIMEOUT = 10


class Stream:
    """The decoded events of one watch response."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def next(self) -> dict:
        line = await asyncio.wait_for(self.response.content.readline(), TIMEOUT)
        assert line, "watch ended"
        return orjson.loads(line)

    async def until(self, predicate) -> dict:
        while True:
            event = await self.next()
            if predicate(event):
                return event


@asynccontextmanager
async def watching(server, path: str) -> AsyncIterator[Stream]:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + path) as resp:
            assert resp.status == 200, await resp.text()
            yield Stream(resp)


def name_of(event: dict) -> str:
    return event["object"]["metadata"]["name"]


async def create_cm(server, name: str, labels: dict | None = None) -> dict:
    status, obj = await server.request("POST", CM_PATH, {
        "metadata": {"name": name, "labels": labels or {}}})
    assert status == 201, obj
    return obj


async def test_watch_from_zero_sends_current_state_then_changes(apiserver):
    await create_cm(apiserver, "pre")
    async with watching(apiserver, CM_PATH + "?watch=1&resourceVersion=0") as stream:
        first = await stream.next()
        assert first["type"] == "ADDED" and name_of(first) == "pre"
        created = await create_cm(apiserver, "live")
        event = await stream.next()
        assert event["type"] == "ADDED" and name_of(event) == "live"
        assert event["object"]["metadata"]["resourceVersion"] == \
            created["metadata"]["resourceVersion"]
        await apiserver.request("PATCH", f"{CM_PATH}/live", {"data": {"a": "1"}},
                                content_type="application/merge-patch+json")
        event = await stream.next()
        assert event["type"] == "MODIFIED" and event["object"]["data"] == {"a": "1"}
        await apiserver.request("DELETE", f"{CM_PATH}/live")
        event = await stream.next()
        assert event["type"] == "DELETED" and name_of(event) == "live"


async def test_watch_from_exact_version_is_strictly_after(apiserver):
    first = await create_cm(apiserver, "a")
    await create_cm(apiserver, "b")
    await create_cm(apiserver, "c")
    rv = first["metadata"]["resourceVersion"]
    async with watching(apiserver, f"{CM_PATH}?watch=true&resourceVersion={rv}") as stream:
        assert name_of(await stream.next()) == "b"
        assert name_of(await stream.next()) == "c"


async def test_legacy_watch_prefix_and_name(apiserver):
    await create_cm(apiserver, "one")
    await create_cm(apiserver, "two")
    path = "/api/v1/watch/namespaces/default/configmaps/two"
    async with watching(apiserver, path) as stream:
        event = await stream.next()
        assert event["type"] == "ADDED" and name_of(event) == "two"
        await apiserver.request("PATCH", f"{CM_PATH}/one", {"data": {"x": "1"}},
                                content_type="application/merge-patch+json")
        await apiserver.request("PATCH", f"{CM_PATH}/two", {"data": {"x": "2"}},
                                content_type="application/merge-patch+json")
        event = await stream.next()
        assert event["type"] == "MODIFIED" and name_of(event) == "two"


async def test_label_selector_transitions(apiserver):
    await create_cm(apiserver, "m", {"tier": "web"})
    async with watching(apiserver, CM_PATH + "?watch=1&labelSelector=tier%3Dweb") as stream:
        assert (await stream.next())["type"] == "ADDED"
        await apiserver.request("PATCH", f"{CM_PATH}/m", {"metadata": {"labels": {"tier": "db"}}},
                                content_type="application/merge-patch+json")
        left = await stream.next()
        assert left["type"] == "DELETED" and name_of(left) == "m"
        await apiserver.request("PATCH", f"{CM_PATH}/m", {"metadata": {"labels": {"tier": "web"}}},
                                content_type="application/merge-patch+json")
        back = await stream.next()
        assert back["type"] == "ADDED" and name_of(back) == "m"


async def test_field_selector_on_pods_sees_binding_as_added(apiserver):
    pods = "/api/v1/namespaces/default/pods"
    await apiserver.request("POST", pods, {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}})
    async with watching(apiserver, "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dn1") \
            as stream:
        status, body = await apiserver.request("POST", f"{pods}/p/binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
            "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}})
        assert status == 201 and body["status"] == "Success"
        event = await stream.next()
        assert event["type"] == "ADDED" and event["object"]["spec"]["nodeName"] == "n1"


async def test_bookmarks_and_timeout(apiserver_factory):
    server = await apiserver_factory(watch_bookmark_interval=0.2)
    created = await create_cm(server, "bm")
    path = (f"{CM_PATH}?watch=1&allowWatchBookmarks=true&timeoutSeconds=2"
            f"&resourceVersion={created['metadata']['resourceVersion']}")
    async with watching(server, path) as stream:
        event = await stream.next()
        assert event["type"] == "BOOKMARK"
        assert int(event["object"]["metadata"]["resourceVersion"]) >= \
            int(created["metadata"]["resourceVersion"])
        assert event["object"]["kind"] == "ConfigMap"
        # the server ends the watch after timeoutSeconds
        rest = await asyncio.wait_for(stream.response.content.read(), TIMEOUT)
        assert all(orjson.loads(line)["type"] == "BOOKMARK" for line in rest.splitlines())


async def test_too_old_resource_version_is_410_expired(apiserver_factory):
    server = await apiserver_factory(watch_cache_size=3)
    first = await create_cm(server, "old0")
    for i in range(1, 6):
        await create_cm(server, f"old{i}")
    rv = first["metadata"]["resourceVersion"]
    async with watching(server, f"{CM_PATH}?watch=1&resourceVersion={rv}") as stream:
        event = await stream.next()
        assert event["type"] == "ERROR"
        status = event["object"]
        assert status["kind"] == "Status" and status["code"] == 410
        assert status["reason"] == "Expired"
        assert status["message"].startswith(f"too old resource version: {rv}")


async def test_send_initial_events_ends_with_annotated_bookmark(apiserver):
    await create_cm(apiserver, "i1")
    await create_cm(apiserver, "i2")
    path = (CM_PATH + "?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
            "&resourceVersionMatch=NotOlderThan&resourceVersion=")
    async with watching(apiserver, path) as stream:
        names = {name_of(await stream.next()), name_of(await stream.next())}
        assert names == {"i1", "i2"}
        bookmark = await stream.next()
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"}
        await create_cm(apiserver, "i3")
        assert name_of(await stream.next()) == "i3"


async def test_send_initial_events_requires_not_older_than(apiserver):
    status, body = await apiserver.request(
        "GET", CM_PATH + "?watch=1&sendInitialEvents=true&allowWatchBookmarks=true")
    assert status == 422 and body["reason"] == "Invalid"


async def test_table_watch(apiserver):
    await create_cm(apiserver, "tw")
    async with aiohttp.ClientSession() as session:
        headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
        async with session.get(apiserver.url + CM_PATH + "?watch=1", headers=headers) as resp:
            event = orjson.loads(await asyncio.wait_for(resp.content.readline(), TIMEOUT))
            assert event["type"] == "ADDED"
            assert event["object"]["kind"] == "Table"
            assert event["object"]["rows"][0]["cells"][0] == "tw"


async def test_closed_watches_are_cleaned_up(apiserver):
    cache = apiserver.server.watch_cache
    from tinykube.api.kinds import lookup

    resource_cache = cache.cache_for(lookup("", "v1", "configmaps"))
    before = len(resource_cache.watchers)
    sessions = []
    for _ in range(20):
        session = aiohttp.ClientSession()
        resp = await session.get(apiserver.url + CM_PATH + "?watch=1&resourceVersion=0")
        assert resp.status == 200
        sessions.append((session, resp))
    assert len(resource_cache.watchers) == before + 20
    for session, resp in sessions:
        resp.close()  # abrupt: the connection is dropped mid-stream
        await session.close()

    async def drained():
        while len(resource_cache.watchers) > before:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(drained(), TIMEOUT)
    status, _ = await apiserver.request("GET", CM_PATH)
    assert status == 200
