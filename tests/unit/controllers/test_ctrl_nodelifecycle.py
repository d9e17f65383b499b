"""Node lifecycle (grace periods, conditions, taints) and taint-based eviction."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.nodelifecycle import (NOT_READY, UNREACHABLE,
                                                NodeLifecycleController, desired_taints)
from tinykube.controllers.tainteviction import TaintEvictionController, min_toleration_seconds
from tinykube.controllers.testutil import make_context, new_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_node(name="n1", ready="True", beat="2026-01-01T00:00:00Z", taints=None):
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": meta.new_uid(), "resourceVersion": "1"},
            "spec": {}, "status": {"conditions": [
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": beat},
                {"type": "Ready", "status": ready, "reason": "KubeletReady",
                 "lastHeartbeatTime": beat, "lastTransitionTime": beat}]}}
    if taints:
        node["spec"]["taints"] = taints
    return node


def setup_lifecycle():
    ctx, client, informers, recorder = make_context()
    clock = Clock()
    ctrl = NodeLifecycleController(ctx, grace_period=40, startup_grace_period=60, clock=clock)
    return ctrl, client, informers, recorder, clock


def conditions(client, name="n1"):
    return {c["type"]: c for c in client.objects["nodes"][name]["status"]["conditions"]}


async def test_healthy_node_is_left_alone_and_rechecked_at_deadline():
    ctrl, client, informers, recorder, clock = setup_lifecycle()
    node = new_node()
    client.seed("nodes", node)
    informers["nodes"].add(node)
    await ctrl.sync("n1")
    assert client.writes() == []
    assert "n1" in ctrl.queue._delayed  # the grace-period timer


async def test_silent_node_goes_unknown_tainted_and_pods_not_ready():
    ctrl, client, informers, recorder, clock = setup_lifecycle()
    node = new_node()
    client.seed("nodes", node)
    informers["nodes"].add(node)
    pod = new_pod("p", node="n1", phase="Running", ready=True)
    client.seed("pods", pod)
    informers["pods"].seed(pod)
    await ctrl.sync("n1")
    clock.now += 41
    await ctrl.sync("n1")
    conds = conditions(client)
    assert conds["Ready"]["status"] == "Unknown"
    assert conds["Ready"]["reason"] == "NodeStatusUnknown"
    assert conds["Ready"]["message"] == "Kubelet stopped posting node status."
    assert conds["MemoryPressure"]["status"] == "Unknown"
    taints = {(t["key"], t["effect"]) for t in client.objects["nodes"]["n1"]["spec"]["taints"]}
    assert taints == {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
    pod_ready = [c for c in client.objects["pods"]["default/p"]["status"]["conditions"]
                 if c["type"] == "Ready"][0]
    assert pod_ready["status"] == "False"
    assert ("Normal", "NodeNotReady", "Node n1 status is now: NodeNotReady") in recorder.events


async def test_lease_renewals_keep_node_healthy():
    ctrl, client, informers, recorder, clock = setup_lifecycle()
    node = new_node()
    client.seed("nodes", node)
    informers["nodes"].add(node)
    for i in range(3):
        clock.now += 30
        informers["leases"].add({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                 "metadata": {"name": "n1", "namespace": "kube-node-lease",
                                              "resourceVersion": str(i + 2)},
                                 "spec": {"renewTime": f"2026-01-01T00:00:{i:02d}.000000Z"}})
        await ctrl.sync("n1")
    assert client.writes() == []


def test_not_ready_node_gets_not_ready_taint_and_recovery_removes_it():
    node = new_node(ready="False")
    keys = {t["key"] for t in desired_taints(node, meta.now())}
    assert keys == {NOT_READY}
    node = new_node(ready="True", taints=[{"key": NOT_READY, "effect": "NoExecute"},
                                          {"key": "dedicated", "effect": "NoSchedule"}])
    assert desired_taints(node, meta.now()) == [{"key": "dedicated", "effect": "NoSchedule"}]


def test_min_toleration_seconds():
    taint = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert min_toleration_seconds([], [taint]) == 0
    forever = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
    assert min_toleration_seconds([forever], [taint]) is None
    short = {**forever, "tolerationSeconds": 2}
    assert min_toleration_seconds([short, {**forever, "tolerationSeconds": 300}], [taint]) == 2


async def test_taint_eviction_waits_for_toleration_seconds():
    ctx, client, informers, recorder = make_context()
    clock = Clock()
    ctrl = TaintEvictionController(ctx, clock=clock)
    node = new_node(ready="Unknown", taints=[{"key": UNREACHABLE, "effect": "NoExecute"}])
    informers["nodes"].seed(node)
    tolerant = new_pod("tolerant", node="n1", phase="Running")
    tolerant["spec"]["tolerations"] = [{"key": UNREACHABLE, "operator": "Exists",
                                        "effect": "NoExecute", "tolerationSeconds": 5}]
    intolerant = new_pod("intolerant", node="n1", phase="Running")
    client.seed("pods", tolerant, intolerant)
    informers["pods"].seed(tolerant, intolerant)
    await ctrl.sync("default/intolerant")
    await ctrl.sync("default/tolerant")
    assert "default/intolerant" not in client.objects["pods"]
    assert "default/tolerant" in client.objects["pods"]
    clock.now += 6
    await ctrl.sync("default/tolerant")
    assert "default/tolerant" not in client.objects["pods"]
    assert ("Normal", "TaintManagerEviction", "Marking for deletion Pod default/tolerant") in \
        recorder.events
    status_write = [a for a in client.writes("pods") if a.subresource == "status"][0]
    assert status_write.body["status"]["conditions"][-1]["type"] == "DisruptionTarget"
