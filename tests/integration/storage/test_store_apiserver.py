"""The stores under a real API server: two servers on one SQLite file, and etcd via etcdctl."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest


def configmap(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"k": value}}


async def test_two_apiservers_share_one_sqlite_file(apiserver_factory, tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'shared.db'}"
    a = await apiserver_factory(store_url=url)
    b = await apiserver_factory(store_url=url)
    async with a.client() as ca, b.client() as cb:
        created = await ca.resource("configmaps").create(configmap("shared", "1"),
                                                         namespace="default")
        rv = created["metadata"]["resourceVersion"]
        events = cb.resource("configmaps").watch(namespace="default", resource_version=rv)
        updated = dict(created, data={"k": "2"})
        await ca.resource("configmaps").update(updated)

        async def first_modified() -> dict:
            async for kind, obj in events:
                if kind == "MODIFIED":
                    return obj
            raise AssertionError("watch ended")

        seen = await asyncio.wait_for(first_modified(), 10)
        assert seen["data"] == {"k": "2"}
        got = await cb.resource("configmaps").get("shared", namespace="default")
        assert got["metadata"]["resourceVersion"] == seen["metadata"]["resourceVersion"]


@pytest.mark.etcd
@pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcdctl not installed")
async def test_objects_written_through_the_apiserver_are_json_in_etcd(
        apiserver_factory, etcd_server: str) -> None:
    api = await apiserver_factory(store_url=etcd_server)
    async with api.client() as client:
        await client.resource("configmaps").create(configmap("in-etcd", "v"), namespace="default")
    out = subprocess.run(
        ["etcdctl", "--endpoints", etcd_server.removeprefix("etcd://"), "get",
         "/registry/configmaps/default/in-etcd", "--print-value-only"],
        capture_output=True, text=True, timeout=20, check=True, env={"ETCDCTL_API": "3"},
    ).stdout
    obj = json.loads(out)
    assert obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "in-etcd"
    assert obj["data"] == {"k": "v"}
