"""DaemonSet: one pinned pod per eligible node, taints, selectors, rolling update."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.daemonset import REVISION_LABEL, DaemonSetController, pod_node, should_run
from tinykube.controllers.testutil import make_context, ready_status

KEY = "kube-system/agent"


def node(name, labels=None, taints=None):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": meta.new_uid(), "labels": labels or {},
                         "resourceVersion": "1"},
            "spec": {"taints": taints or []}}


def new_ds(**template_spec):
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "kube-system", "uid": meta.new_uid(),
                         "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {
                         "containers": [{"name": "a", "image": "agent:1"}], **template_spec}}},
            "status": {}}


def test_eligibility():
    ds = new_ds(nodeSelector={"role": "worker"})
    assert should_run(ds, node("a", {"role": "worker"}))
    assert not should_run(ds, node("b"))
    tainted = node("c", {"role": "worker"}, [{"key": "gpu", "effect": "NoSchedule"}])
    assert not should_run(ds, tainted)
    not_ready = node("d", {"role": "worker"},
                     [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
    assert should_run(ds, not_ready)  # daemon pods tolerate it


async def test_one_pod_per_node_pinned_by_match_fields():
    ctx, client, informers, recorder = make_context()
    ctrl = DaemonSetController(ctx)
    ds = new_ds()
    client.seed("daemonsets", ds)
    informers["daemonsets"].seed(ds)
    informers["nodes"].seed(node("n1"), node("n2"),
                            node("n3", taints=[{"key": "x", "effect": "NoExecute"}]))
    await ctrl.sync(KEY)
    pods = list(client.objects["pods"].values())
    assert sorted(pod_node(p) for p in pods) == ["n1", "n2"]
    term = pods[0]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert term["matchFields"][0]["key"] == "metadata.name"
    informers.mirror(client, "pods")
    for p in pods:
        ctrl.expectations.creation_observed(KEY)
    await ctrl.sync(KEY)
    assert len(client.objects["pods"]) == 2
    status = client.objects["daemonsets"][KEY]["status"]
    assert status["desiredNumberScheduled"] == 2 and status["currentNumberScheduled"] == 2


async def test_rolling_update_replaces_one_at_a_time():
    ctx, client, informers, recorder = make_context()
    ctrl = DaemonSetController(ctx)
    ds = new_ds()
    client.seed("daemonsets", ds)
    informers["nodes"].seed(node("n1"), node("n2"))

    async def step():
        for p in client.objects.get("pods", {}).values():
            if not p.get("status", {}).get("conditions"):
                p["status"] = ready_status(p, "10.0.0.1")
        informers.mirror(client, "pods", "daemonsets")
        ctrl.expectations.delete_expectations(KEY)
        await ctrl.sync(KEY)

    await step()
    old = {p["metadata"]["labels"][REVISION_LABEL] for p in client.objects["pods"].values()}
    client.objects["daemonsets"][KEY]["spec"]["template"]["spec"]["containers"][0]["image"] = \
        "agent:2"
    await step()
    assert len(client.objects["pods"]) == 1  # one replaced at a time (maxUnavailable 1)
    for _ in range(4):
        await step()
    revs = {p["metadata"]["labels"][REVISION_LABEL] for p in client.objects["pods"].values()}
    assert len(client.objects["pods"]) == 2 and not revs & old
