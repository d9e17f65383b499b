"""The controllers together with the scheduler and hollow nodes (the in-process cluster)."""

from __future__ import annotations

from tinykube.controllers.testutil import load_example
from tinykube.testing.inprocess import cluster


def rolled_out(d):
    st = d.get("status") or {}
    cond = next((c for c in st.get("conditions") or [] if c["type"] == "Progressing"), {})
    return (st.get("observedGeneration") == d["metadata"]["generation"]
            and st.get("updatedReplicas") == st.get("availableReplicas") == 3
            and st.get("replicas") == 3 and cond.get("reason") == "NewReplicaSetAvailable")


async def test_deployment_rolls_out_on_hollow_nodes_and_service_gets_endpoints():
    async with cluster(nodes=2) as c:
        await c.apply(load_example("web-deployment.yaml"))
        await c.apply(load_example("web-service.yaml"))
        await c.wait_for("deployments", "web", rolled_out, group="apps")
        pods = (await c.resource("pods").list(namespace="default",
                                              label_selector="app=web"))["items"]
        assert all(p["spec"].get("nodeName") for p in pods)
        ep = await c.wait_for("endpoints", "web-service", lambda e: sum(
            len(s.get("addresses") or []) for s in e.get("subsets") or []) == 3)
        assert {a["nodeName"] for s in ep["subsets"] for a in s["addresses"]} <= {
            p["spec"]["nodeName"] for p in pods}
        await c.resource("deployments", "apps").patch(
            "web", {"spec": {"template": {"spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.26"}]}}}}, namespace="default")
        d = await c.wait_for("deployments", "web", lambda d: rolled_out(d) and
                             d["metadata"]["generation"] == 2, group="apps")
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        sa = await c.wait_for("serviceaccounts", "default", lambda o: True)
        assert sa["metadata"]["namespace"] == "default"


async def test_pods_of_a_silent_hollow_node_are_evicted_and_rescheduled(apiserver):
    from tinykube.api import meta
    from tinykube.controllers.testutil import RunningControllers, wait_for_list, wait_for_object
    from tinykube.kubelet.hollow import HollowNodes
    from tinykube.scheduler.scheduler import Scheduler, SchedulerConfig

    client = apiserver.client(insecure=True)
    sched_client = apiserver.client(insecure=True)
    node_client = apiserver.client(insecure=True)
    nodes = HollowNodes(node_client, count=2, name_prefix="hollow-", lease_interval=0.5)
    scheduler = Scheduler(SchedulerConfig(client=sched_client, leader_elect=False,
                                          secure_port=-1))
    rs = load_example("web-rs.yaml")
    rs["spec"]["replicas"] = 2
    rs["spec"]["template"]["spec"]["tolerations"] = [
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 1}]
    # both replicas land on hollow-0 at first: hollow-1 is cordoned until then
    await nodes.start()
    await scheduler.start()
    try:
        async with RunningControllers(client, ["replicaset", "nodelifecycle",
                                               "taint-eviction", "podgc"],
                                      node_monitor_grace_period=2.0):
            await client.resource("nodes").patch("hollow-1", {"spec": {"unschedulable": True}},
                                                 patch_type="merge")
            await client.resource("replicasets", "apps").create(rs, namespace="default")
            placed = await wait_for_list(client.resource("pods"), lambda items: len(items) == 2
                                         and all(p["spec"].get("nodeName") == "hollow-0" and
                                                 (p.get("status") or {}).get("phase") ==
                                                 "Running" for p in items),
                                         namespace="default", timeout=20)
            await client.resource("nodes").patch("hollow-1", {"spec": {"unschedulable": None}},
                                                 patch_type="merge")
            nodes.stop_heartbeat("hollow-0")
            await wait_for_object(client.resource("nodes"), "hollow-0", lambda n: any(
                c["type"] == "Ready" and c["status"] == "Unknown"
                for c in (n.get("status") or {}).get("conditions") or []) and any(
                t["key"] == "node.kubernetes.io/unreachable"
                for t in (n.get("spec") or {}).get("taints") or []), timeout=15)
            old = {meta.name(p) for p in placed}

            def moved(items):
                alive = [p for p in items if meta.deletion_timestamp(p) is None
                         and meta.name(p) not in old]
                return len(alive) == 2 and all(
                    p["spec"].get("nodeName") == "hollow-1" and
                    (p.get("status") or {}).get("phase") == "Running" for p in alive)

            await wait_for_list(client.resource("pods"), moved, namespace="default",
                                timeout=20)
    finally:
        await scheduler.stop()
        await nodes.stop()
        for c in (client, sched_client, node_client):
            await c.close()
