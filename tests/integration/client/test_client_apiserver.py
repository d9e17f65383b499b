"""The client, informer, leader election and event recorder against the real API server."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.api.errors import ApiError
from tinykube.client.events import EventRecorder
from tinykube.client.informer import InformerFactory
from tinykube.client.leaderelection import LeaderElector
from tinykube.client.rest import Client


async def test_crud_patch_and_errors(apiserver):
    async with Client.from_kubeconfig(apiserver.kubeconfig) as client:
        cms = client.resource("configmaps")
        created = await cms.create({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "c1"}, "data": {"a": "1"}},
                                   namespace="default")
        assert created["metadata"]["resourceVersion"]
        for patch_type, body in (("merge", {"data": {"b": "2"}}),
                                 ("strategic", {"data": {"c": "3"}}),
                                 ("json", [{"op": "add", "path": "/data/d", "value": "4"}])):
            await cms.patch("c1", body, namespace="default", patch_type=patch_type)
        got = await cms.get("c1", namespace="default")
        assert got["data"] == {"a": "1", "b": "2", "c": "3", "d": "4"}
        stale = {**got, "data": {"stale": "yes"}}
        await cms.update({**got, "data": {"fresh": "yes"}})
        with pytest.raises(ApiError) as err:
            await cms.update(stale)
        assert err.value.code == 409
        with pytest.raises(ApiError) as err:
            await cms.get("missing", namespace="default")
        assert err.value.code == 404 and err.value.message == 'configmaps "missing" not found'
        await cms.delete("c1", namespace="default")


async def test_server_side_apply(apiserver):
    async with Client.from_kubeconfig(apiserver.kubeconfig) as client:
        try:
            applied = await client.resource("configmaps").patch(
                "c2", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"},
                       "data": {"x": "y"}}, namespace="default", patch_type="apply",
                field_manager="tester", force=True)
        except ApiError as exc:
            if "not available" in exc.message:
                pytest.skip("this API server build has no server-side apply yet")
            raise
        assert applied["data"] == {"x": "y"}


async def test_informer_follows_the_server(apiserver):
    async with Client.from_kubeconfig(apiserver.kubeconfig) as client:
        cms = client.resource("configmaps")
        await cms.create({"metadata": {"name": "before"}}, namespace="default")
        factory = InformerFactory(client)
        informer = factory.informer("configmaps", namespace="default")
        seen: list[tuple[str, str]] = []
        changed = asyncio.Event()

        def record(kind):
            def handler(*objs):
                seen.append((kind, objs[-1]["metadata"]["name"]))
                changed.set()
            return handler

        informer.add_handlers(record("add"), record("update"), record("delete"))
        await factory.start_all()
        await cms.create({"metadata": {"name": "after"}}, namespace="default")
        await cms.patch("before", {"data": {"k": "v"}}, namespace="default", patch_type="merge")
        await cms.delete("after", namespace="default")

        async def until(n):
            while len(seen) < n:
                changed.clear()
                await changed.wait()
        try:
            await asyncio.wait_for(until(4), 10)
        finally:
            await factory.stop_all()
        assert seen == [("add", "before"), ("add", "after"), ("update", "before"),
                        ("delete", "after")]
        assert informer.cache.keys() == ["default/before"]


async def test_leader_election_and_events(apiserver):
    async with Client.from_kubeconfig(apiserver.kubeconfig) as client:
        leading = asyncio.Event()

        async def work():
            leading.set()
            await asyncio.Event().wait()

        elector = LeaderElector(client, "kube-system", "tk-test", "me_1", lease_duration=3,
                                renew_deadline=2, retry_period=0.5)
        run = asyncio.create_task(elector.run(work))
        await asyncio.wait_for(leading.wait(), 10)
        lease = await client.resource("leases").get("tk-test", namespace="kube-system")
        assert lease["spec"]["holderIdentity"] == "me_1"
        assert lease["spec"]["leaseDurationSeconds"] == 3
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)

        rec = EventRecorder(client, "tester", host="h")
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "p", "namespace": "default", "uid": "u"}}
        rec.event(pod, "Warning", "FailedScheduling", "nope")
        await rec.close()
        rec.event(pod, "Warning", "FailedScheduling", "nope")
        await rec.close()
        events = await client.resource("events").list(
            namespace="default", field_selector="involvedObject.name=p")
        assert [(e["reason"], e["count"]) for e in events["items"]] == [("FailedScheduling", 2)]
