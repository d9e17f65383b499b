"""Node lifecycle, taint eviction and node IPAM against a real API server."""

from __future__ import annotations

import copy

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.controllers.testutil import (RunningControllers, load_example, mark_ready,
                                           wait_for_list, wait_for_object)


async def register_node(api, name: str) -> dict:
    """What a kubelet does at start: create its Node, post Ready, create its Lease."""
    nodes = api.resource("nodes")
    node = await nodes.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    now = meta.now()
    node["status"] = {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady",
         "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
         "lastTransitionTime": now}]}
    node = await nodes.update(node, subresource="status")
    try:
        await api.resource("namespaces").create({"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "kube-node-lease"}})
    except ApiError as err:
        if err.code != 409:
            raise
    await api.resource("leases", "coordination.k8s.io").create(
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
         "metadata": {"name": name, "namespace": "kube-node-lease"},
         "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                  "renewTime": meta.now_micro()}}, namespace="kube-node-lease")
    return node


def ready_status(node):
    cond = next((c for c in ((node or {}).get("status") or {}).get("conditions") or []
                 if c["type"] == "Ready"), {})
    return cond.get("status")


async def test_silent_node_goes_not_ready_and_its_pods_are_evicted(api):
    await register_node(api, "n1")
    rs = load_example("web-rs.yaml")
    rs["spec"]["replicas"] = 2
    rs["spec"]["template"]["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 1}]
    pods = api.resource("pods")
    async with RunningControllers(api, ["replicaset", "nodelifecycle", "taint-eviction",
                                        "garbagecollector"],
                                  node_monitor_grace_period=2.0):
        await api.resource("replicasets", "apps").create(rs, namespace="default")
        first = await wait_for_list(pods, lambda items: len(items) == 2, namespace="default")
        for i, pod in enumerate(first):
            await pods.create_subresource(meta.name(pod), "binding", {
                "apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta.name(pod)},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}},
                namespace="default")
            await mark_ready(api, pod, f"10.244.0.{i + 2}")
        # the kubelet is now silent: no Lease renewals, no status posts
        node = await wait_for_object(api.resource("nodes"), "n1",
                                     lambda n: ready_status(n) == "Unknown", timeout=15)
        cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert cond["reason"] == "NodeStatusUnknown"
        assert cond["message"] == "Kubelet stopped posting node status."
        node = await wait_for_object(api.resource("nodes"), "n1", lambda n: any(
            t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
            for t in (n or {}).get("spec", {}).get("taints") or []), timeout=10)
        old = {meta.name(p) for p in first}

        def replaced(items):
            alive = [p for p in items if meta.deletion_timestamp(p) is None]
            return (len(alive) == 2 and not old & {meta.name(p) for p in alive})

        await wait_for_list(pods, replaced, namespace="default", timeout=15)
        events = (await api.resource("events").list(namespace="default"))["items"]
        reasons = {e.get("reason") for e in events}
        assert "TaintManagerEviction" in reasons


async def test_nodes_get_pod_cidrs(api):
    async with RunningControllers(api, ["nodeipam"], cluster_cidr="10.244.0.0/16"):
        for name in ("a", "b"):
            await api.resource("nodes").create({"apiVersion": "v1", "kind": "Node",
                                                "metadata": {"name": name}})
        nodes = await wait_for_list(api.resource("nodes"), lambda items: len(items) == 2 and all(
            (n.get("spec") or {}).get("podCIDR") for n in items))
        cidrs = sorted(n["spec"]["podCIDR"] for n in nodes)
        assert cidrs == ["10.244.0.0/24", "10.244.1.0/24"]
        assert all(n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]] for n in nodes)


async def test_recovering_node_loses_its_taints(api):
    await register_node(api, "n2")
    nodes = api.resource("nodes")
    async with RunningControllers(api, ["nodelifecycle"], node_monitor_grace_period=2.0):
        await wait_for_object(nodes, "n2", lambda n: ready_status(n) == "Unknown", timeout=10)
        for _ in range(10):  # the controller writes the node too: retry on conflicts
            body = copy.deepcopy(await nodes.get("n2"))
            now = meta.now()
            for c in body["status"]["conditions"]:
                if c["type"] == "Ready":
                    c.update({"status": "True", "reason": "KubeletReady",
                              "lastHeartbeatTime": now, "lastTransitionTime": now})
            try:
                await nodes.update(body, subresource="status")
                break
            except ApiError as err:
                if err.code != 409:
                    raise
        await wait_for_object(nodes, "n2", lambda n: ready_status(n) == "True" and not any(
            t["key"] == "node.kubernetes.io/unreachable"
            for t in (n.get("spec") or {}).get("taints") or []), timeout=10)
