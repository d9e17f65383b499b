"""etcd-specific behaviour: data readable with etcdctl, leases as upstream, a 3-member cluster."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import pytest

from tinykube.storage.etcd import EtcdStore
from tinykube.storage.store import UnavailableError
from tinykube.testing.etcd import EtcdCluster
from tinykube.testing.store import collect_until

pytestmark = pytest.mark.etcd

ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


@pytest.fixture
async def etcd(etcd_server: str):
    store = EtcdStore.from_url(etcd_server)
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.skipif(not shutil.which("etcdctl"), reason="etcdctl not installed")
async def test_values_are_plain_json_for_etcdctl(etcd: EtcdStore, prefix: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}}
    await etcd.create(prefix + "configmaps/default/cm", json.dumps(obj).encode())
    out = subprocess.run(
        [ETCDCTL, "--endpoints", ",".join(etcd.endpoints), "get", "--prefix", prefix],
        capture_output=True, text=True, timeout=20, check=True,
        env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert out[0] == prefix + "configmaps/default/cm"
    assert json.loads(out[1]) == obj


async def test_ttl_writes_close_in_time_share_a_lease(etcd: EtcdStore, prefix: str) -> None:
    await etcd.create(prefix + "e1", b"{}", lease_ttl=3600)
    await etcd.create(prefix + "e2", b"{}", lease_ttl=3600)
    _, a = await etcd.get(prefix + "e1")
    _, b = await etcd.get(prefix + "e2")
    assert a is not None and b is not None and a.lease == b.lease != 0


async def test_cluster_survives_losing_a_member(etcd_cluster: EtcdCluster, prefix: str) -> None:
    store = EtcdStore.from_url(etcd_cluster.url)
    try:
        rev = await store.create(prefix + "a", b"1")
        watch = store.watch(prefix, rev)
        victim = etcd_cluster.members[0]
        victim.stop()
        try:
            # Reads fail over to another member by themselves.
            _, kv = await store.get(prefix + "a")
            assert kv is not None and kv.mod_revision == rev
            # gRPC moves to the next address after the first call fails: bounded retry.
            deadline = time.monotonic() + 15
            while True:
                try:
                    r2 = await store.update(prefix + "a", b"2", rev)
                    break
                except UnavailableError:
                    assert time.monotonic() < deadline, "no failover to the other members"
                    await asyncio.sleep(0.1)
            _, kv = await store.get(prefix + "a")
            assert kv is not None and kv.value == b"2" and kv.mod_revision == r2
        finally:
            victim.start()
        # The watch either followed the failover or reported the broken stream; a new one
        # from the same revision sees the update.
        await watch.close()
        again = store.watch(prefix, rev)
        assert [e.revision for e in await collect_until(again, r2)] == [r2]
        await again.close()
    finally:
        await store.close()
