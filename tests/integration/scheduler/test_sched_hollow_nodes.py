"""Hollow nodes against the real API server: Nodes, Leases, pod lifecycle, failures."""

from __future__ import annotations

import asyncio

from tinykube.api.errors import ApiError
from tinykube.kubelet.hollow import EXIT_CODE_ANNOTATION, HollowNodes, NodeTemplate
from tinykube.scheduler import Scheduler, SchedulerConfig

from tinykube.scheduler.testutil import make_pod


async def wait_for(client, name, predicate, timeout=30.0):
    pods = client.resource("pods")

    async def until():
        while True:
            try:
                current = await pods.get(name, namespace="default")
            except ApiError as exc:
                if exc.code == 404 and predicate(None):
                    return None
                raise
            if predicate(current):
                return current
            async for etype, obj in pods.watch(
                    namespace="default", field_selector=f"metadata.name={name}",
                    resource_version=current["metadata"]["resourceVersion"],
                    timeout_seconds=int(timeout)):
                if etype == "DELETED" and predicate(None):
                    return None
                if etype != "DELETED" and predicate(obj):
                    return obj
    return await asyncio.wait_for(until(), timeout)


async def test_nodes_leases_and_pod_lifecycle(apiserver):
    async with apiserver.client() as client:
        hollow = HollowNodes(client, count=3, name_prefix="hn-", lease_interval=0,
                             capacity=NodeTemplate(cpu="2", memory="4Gi", gpus=1),
                             labels={"pool": "a"})
        await hollow.start()
        sched = Scheduler(SchedulerConfig(client=client, leader_elect=False, secure_port=0))
        await sched.start()
        try:
            nodes = await client.resource("nodes").list(label_selector="pool=a")
            assert sorted(n["metadata"]["name"] for n in nodes["items"]) == [
                "hn-0", "hn-1", "hn-2"]
            node = nodes["items"][0]
            assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
            leases = client.resource("leases", "coordination.k8s.io")
            lease = await leases.get("hn-1", namespace="kube-node-lease")
            assert lease["spec"]["holderIdentity"] == "hn-1"
            assert lease["spec"]["leaseDurationSeconds"] == 40
            before = lease["spec"]["renewTime"]

            hollow.stop_heartbeat("hn-2")
            silent = (await leases.get("hn-2", namespace="kube-node-lease"))["spec"]["renewTime"]
            await asyncio.sleep(0.01)  # renewTime has microsecond resolution
            await hollow.heartbeat_once()
            assert (await leases.get("hn-1", namespace="kube-node-lease"))["spec"][
                "renewTime"] > before
            assert (await leases.get("hn-2", namespace="kube-node-lease"))["spec"][
                "renewTime"] == silent
            hollow.resume_heartbeat("hn-2")  # a silent node's kubelet runs no pods either

            pod = make_pod("worker", cpu="500m", restartPolicy="Never")
            pod["metadata"]["annotations"] = {EXIT_CODE_ANNOTATION: "7"}
            del pod["metadata"]["uid"]
            await client.resource("pods").create(pod, namespace="default")
            done = await wait_for(client, "worker",
                                  lambda p: p and p.get("status", {}).get("phase") == "Failed")
            assert done["spec"]["nodeName"].startswith("hn-")
            assert done["status"]["podIP"].startswith("127.")
            term = done["status"]["containerStatuses"][0]["state"]["terminated"]
            assert term["exitCode"] == 7

            runner = make_pod("runner", cpu="500m")
            del runner["metadata"]["uid"]
            await client.resource("pods").create(runner, namespace="default")
            running = await wait_for(client, "runner",
                                     lambda p: p and p.get("status", {}).get("phase") == "Running")
            assert [c["status"] for c in running["status"]["conditions"]
                    if c["type"] == "Ready"] == ["True"]
            await client.resource("pods").delete("runner", namespace="default")
            await wait_for(client, "runner", lambda p: p is None)
        finally:
            await sched.stop()
            await hollow.stop()
