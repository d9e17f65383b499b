"""Informer: list -> watch -> relist on 410, with the right handler calls."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.client.fake import serve_fake
from tinykube.client.informer import Cache, InformerFactory
from tinykube.client.rest import Client

PODS = "/api/v1/pods"


def pod(name: str, rv: str = "1", node: str = "") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
            "spec": {"nodeName": node}}


def test_cache_replace_reports_differences():
    cache = Cache()
    cache.replace([pod("a"), pod("b"), pod("c")])
    added, updated, deleted = cache.replace([pod("a"), pod("b", "2"), pod("d")])
    assert [o["metadata"]["name"] for o in added] == ["d"]
    assert [(o["metadata"]["resourceVersion"], n["metadata"]["resourceVersion"])
            for o, n in updated] == [("1", "2")]
    assert [o["metadata"]["name"] for o in deleted] == ["c"]
    assert sorted(cache.keys()) == ["default/a", "default/b", "default/d"]


def test_cache_index_follows_updates():
    cache = Cache()
    cache.add_index("node", lambda o: [o["spec"]["nodeName"]] if o["spec"]["nodeName"] else [])
    cache.upsert(pod("a", node="n1"))
    cache.upsert(pod("b", node="n1"))
    assert len(cache.by_index("node", "n1")) == 2
    cache.upsert(pod("a", "2", node="n2"))
    assert [o["metadata"]["name"] for o in cache.by_index("node", "n1")] == ["b"]
    cache.remove("default/b")
    assert cache.by_index("node", "n1") == []


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def add(self, obj):
        self._log("add", obj)

    def update(self, old, new):
        self._log("update", new)

    def delete(self, obj):
        self._log("delete", obj)

    def _log(self, kind, obj):
        self.events.append((kind, obj["metadata"]["name"]))
        self.changed.set()

    async def wait_for(self, n: int) -> None:
        async def until():
            while len(self.events) < n:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(until(), 5)


@pytest.fixture
async def fake_factory():
    async with serve_fake() as (fake, url):
        async with Client(url) as client:
            factory = InformerFactory(client)
            yield fake, factory
            await factory.stop_all()



async def test_informer_chain(fake_factory):
    fake, factory = fake_factory
    fake.put(PODS, pod("a"))
    fake.put(PODS, pod("b"))
    informer = factory.informer("pods")
    assert factory.informer("pods") is informer
    rec = Recorder()
    informer.add_handlers(rec.add, rec.update, rec.delete)
    await factory.start_all()
    assert informer.has_synced
    assert sorted(rec.events) == [("add", "a"), ("add", "b")]

    # live watch events
    fake.put(PODS, pod("c"))
    fake.put(PODS, fake.objects[(PODS, "default", "a")], "MODIFIED")
    fake.remove(PODS, "default", "b")
    await rec.wait_for(5)
    assert rec.events[2:] == [("add", "c"), ("update", "a"), ("delete", "b")]
    assert sorted(informer.cache.keys()) == ["default/a", "default/c"]

    # history compacted while changes happen: the informer must relist and diff
    fake.objects.pop((PODS, "default", "c"))
    fake.revision += 1
    fake.objects[(PODS, "default", "d")] = pod("d", str(fake.revision))
    fake.compact()
    # end the stream so the informer re-watches from its (now expired) revision
    fake.drop_watches()
    await rec.wait_for(7)
    assert sorted(rec.events[5:]) == [("add", "d"), ("delete", "c")]
    assert sorted(informer.cache.keys()) == ["default/a", "default/d"]


async def test_late_handler_sees_cached_objects(fake_factory):
    fake, factory = fake_factory
    fake.put(PODS, pod("a"))
    informer = factory.informer("pods")
    await informer.start()
    rec = Recorder()
    informer.add_handlers(on_add=rec.add)
    assert rec.events == [("add", "a")]


async def test_bookmark_advances_resource_version(fake_factory):
    fake, factory = fake_factory
    informer = factory.informer("configmaps")
    await informer.start()
    before = informer.resource_version
    fake.put("/api/v1/secrets", {"metadata": {"name": "s", "namespace": "default"}})
    fake.bookmark("/api/v1/configmaps")

    async def advanced():
        while informer.resource_version == before:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(advanced(), 5)
    assert int(informer.resource_version) > int(before)
