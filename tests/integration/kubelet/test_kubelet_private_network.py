"""The test kubelets' networks stay private although the host has other bridges.

A bridge left behind by a killed run (or a benchmark's node, or a concurrent session's test)
keeps its subnet's route. A test kubelet that took the same subnet used to get a bridge the
node could not reach: its pods' probes timed out, the liveness probe restarted them and the
test waited for a Ready pod until it gave up.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess

import pytest

from tinykube.api import pods as podutil
from tinykube.kubelet.runtime.process import can_isolate
from tinykube.testing import kubelet as testkubelet
from tinykube.testing.kubelet import private_network, release_network, wait_for_pod

pytestmark = [pytest.mark.root, pytest.mark.skipif(not can_isolate(), reason="needs root on Linux")]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _index(net: dict[str, str]) -> int:
    return int(net["pod_cidr"].split(".")[2])


@pytest.fixture
def leftover_bridge():
    """A bridge holding a test subnet, as a killed run leaves it (no live reservation); the
    subnet's index ``n``."""
    net = private_network()  # a subnet nothing uses yet, for this fixture alone
    n = _index(net)
    name = f"tkl{secrets.token_hex(4)}"
    try:
        _ip("link", "add", name, "type", "bridge")
        _ip("addr", "add", f"10.250.{n}.1/24", "dev", name)
        _ip("link", "set", name, "up")
        _ip("route", "add", f"10.251.{n}.0/28", "dev", name)
        release_network(net)  # its process is gone
        yield n
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
        release_network(net)


def _search_starts_at(monkeypatch, n: int) -> None:
    """Make the subnet search begin at ``n`` (where it would otherwise start by chance)."""
    monkeypatch.setattr(testkubelet.secrets, "randbelow", lambda _k: n - 1)


def test_a_subnet_a_leftover_bridge_holds_is_skipped(leftover_bridge, monkeypatch):
    _search_starts_at(monkeypatch, leftover_bridge)
    net = private_network()
    try:
        assert _index(net) != leftover_bridge
    finally:
        release_network(net)


def test_a_subnet_is_reserved_until_released(monkeypatch):
    free = private_network()
    n = _index(free)
    release_network(free)
    _search_starts_at(monkeypatch, n)
    first = private_network()
    second = private_network()
    try:
        assert _index(first) == n and _index(second) != n  # as a concurrent session would see it
        release_network(first)
        again = private_network()
        assert _index(again) == n
        release_network(again)
        dead = subprocess.Popen(["true"])
        dead.wait()
        with open(testkubelet._reservation(n), "w") as f:
            f.write(f"{dead.pid}\n")  # a session that was killed
        reclaimed = private_network()
        assert _index(reclaimed) == n
        release_network(reclaimed)
    finally:
        release_network(first)
        release_network(second)


SERVER = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('0.0.0.0', 8080)); s.listen()\n"
          "while True:\n c,_=s.accept(); c.sendall(b'reached'); c.close()")


async def test_pods_are_reachable_although_a_leftover_bridge_held_the_subnet(
        apiserver, kubelet_factory, leftover_bridge, monkeypatch):
    _search_starts_at(monkeypatch, leftover_bridge)
    kubelet = await kubelet_factory()
    assert kubelet.config.pod_cidr != f"10.250.{leftover_bridge}.0/24"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "reach"},
           "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "main", "image": "python:3.11", "command": ["python3", "-c", SERVER],
                                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        pod = await wait_for_pod(client, "default", "reach", podutil.is_ready, timeout=30)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(pod["status"]["podIP"], 8080), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b"reached"
    writer.close()
