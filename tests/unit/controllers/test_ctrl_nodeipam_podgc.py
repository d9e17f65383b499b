"""Node CIDR allocation and pod garbage collection."""

from __future__ import annotations

import pytest

from tinykube.api import meta
from tinykube.controllers.nodeipam import CIDRSet, NodeIpamController
from tinykube.controllers.podgc import TERMINATED, PodGCController
from tinykube.controllers.testutil import make_context, new_pod


def node(name, cidr=None):
    n = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": meta.new_uid(),
                                                          "resourceVersion": "1"}, "spec": {}}
    if cidr:
        n["spec"]["podCIDR"] = cidr
    return n


def test_cidr_set_allocates_in_order_and_reuses_released():
    cidrs = CIDRSet("10.244.0.0/16", 24)
    cidrs.occupy("10.244.0.0/24", "a")
    assert cidrs.allocate("b") == "10.244.1.0/24"
    assert cidrs.allocate("c") == "10.244.2.0/24"
    cidrs.release("b")
    assert cidrs.allocate("d") == "10.244.1.0/24"
    small = CIDRSet("10.0.0.0/23", 24)
    assert small.allocate("x") and small.allocate("y") and small.allocate("z") is None
    with pytest.raises(ValueError):
        CIDRSet("10.0.0.0/16", 8)


async def test_ipam_patches_nodes_without_cidr_skipping_taken_ones():
    ctx, client, informers, _ = make_context()
    ctrl = NodeIpamController(ctx, "10.244.0.0/16", 24)
    client.seed("nodes", node("old", "10.244.0.0/24"), node("new"))
    informers["nodes"].add(node("old", "10.244.0.0/24"))
    informers["nodes"].add(node("new"))
    await ctrl.sync("new")
    spec = client.objects["nodes"]["new"]["spec"]
    assert spec["podCIDR"] == "10.244.1.0/24" and spec["podCIDRs"] == ["10.244.1.0/24"]


async def test_podgc_deletes_oldest_terminated_over_threshold():
    ctx, client, informers, _ = make_context()
    ctrl = PodGCController(ctx, threshold=2)
    pods = [new_pod(f"p{i}", phase="Succeeded", created=f"2026-01-01T00:00:0{i}Z")
            for i in range(4)]
    client.seed("pods", *pods)
    informers["pods"].seed(*pods)
    await ctrl.sync(TERMINATED)
    assert sorted(client.objects["pods"]) == ["default/p2", "default/p3"]


async def test_podgc_force_deletes_pods_of_deleted_nodes():
    ctx, client, informers, _ = make_context()
    ctrl = PodGCController(ctx, threshold=100)
    orphan = new_pod("orphan", node="gone", phase="Running")
    kept = new_pod("kept", node="here", phase="Running")
    client.seed("pods", orphan, kept)
    client.seed("nodes", node("here"))
    informers["nodes"].seed(node("here"))
    informers["pods"].seed(orphan, kept)
    await ctrl.sync("default/orphan")
    await ctrl.sync("default/kept")
    assert sorted(client.objects["pods"]) == ["default/kept"]
    delete = [a for a in client.writes() if a.verb == "delete"][0]
    assert delete.options["grace_period_seconds"] == 0
