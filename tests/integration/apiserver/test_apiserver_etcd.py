"""Two API servers over one real etcd: shared state, watches and allocations."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import orjson
import pytest

pytestmark = pytest.mark.etcd

TIMEOUT = 20


async def test_two_servers_share_one_etcd(apiserver_factory, etcd_server):
    a = await apiserver_factory(store_url=etcd_server)
    b = await apiserver_factory(store_url=etcd_server)
    # the etcd is shared by the test session: work in a namespace of our own
    namespace = f"etcd-{uuid.uuid4().hex[:8]}"
    status, _ = await a.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    assert status == 201
    svc_path = f"/api/v1/namespaces/{namespace}/services"
    cm_path = f"/api/v1/namespaces/{namespace}/configmaps"
    async with aiohttp.ClientSession() as session:
        async with session.get(b.url + cm_path + "?watch=1&resourceVersion=0") as stream:
            status, created = await a.request("POST", cm_path, {"metadata": {"name": "shared"}})
            assert status == 201

            async def seen_on_b() -> dict:
                while True:
                    line = await stream.content.readline()
                    assert line, "watch ended"
                    event = orjson.loads(line)
                    if event["object"]["metadata"]["name"] == "shared":
                        return event

            event = await asyncio.wait_for(seen_on_b(), TIMEOUT)
            assert event["type"] == "ADDED"
            assert event["object"]["metadata"]["resourceVersion"] == \
                created["metadata"]["resourceVersion"]
    # a consistent read on B sees A's write at once
    status, got = await b.request("GET", f"{cm_path}/shared")
    assert status == 200 and got["metadata"]["uid"] == created["metadata"]["uid"], got
    # ClusterIPs allocated through either server never collide
    results = await asyncio.gather(*(
        (a if i % 2 else b).request("POST", svc_path, {
            "metadata": {"name": f"s{i}"}, "spec": {"ports": [{"port": 80}]}})
        for i in range(20)))
    assert all(status == 201 for status, _ in results), results
    ips = [svc["spec"]["clusterIP"] for _, svc in results]
    assert len(set(ips)) == len(ips)
