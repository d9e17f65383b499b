"""The scheduler against the real API server, with hollow nodes."""

from __future__ import annotations

import asyncio
import pathlib

import yaml

from tinykube.client.rest import Client
from tinykube.kubelet.hollow import HollowNodes, NodeTemplate
from tinykube.scheduler import Scheduler, SchedulerConfig

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples" / "scheduler"
GPU_LABELS = {"gpu": "true", "disktype": "ssd", "kubernetes.io/e2e-az-name": "az1"}


async def wait_pod(client: Client, name: str, predicate, timeout: float = 30.0) -> dict:
    """Wait on a watch until the pod satisfies ``predicate``."""
    pods = client.resource("pods")

    async def until():
        current = await pods.get(name, namespace="default")
        if predicate(current):
            return current
        rv = current["metadata"]["resourceVersion"]
        async for _, obj in pods.watch(namespace="default", resource_version=rv,
                                       field_selector=f"metadata.name={name}"):
            if obj.get("kind") == "Pod" and predicate(obj):
                return obj
    return await asyncio.wait_for(until(), timeout)


def scheduled_condition(pod: dict) -> dict:
    return next((c for c in (pod.get("status") or {}).get("conditions") or ()
                 if c["type"] == "PodScheduled"), {})


async def start_cluster(client, groups):
    nodes = [HollowNodes(client, count=n, capacity=tpl, name_prefix=prefix, lease_interval=0)
             for prefix, n, tpl in groups]
    for group in nodes:
        await group.start()
    sched = Scheduler(SchedulerConfig(client=client, leader_elect=False, secure_port=0))
    await sched.start()
    return nodes, sched


async def stop_cluster(nodes, sched):
    await sched.stop()
    for group in nodes:
        await group.stop()


async def test_gpu_pod_lands_on_the_only_fitting_node(apiserver):
    async with apiserver.client() as client:
        nodes, sched = await start_cluster(client, [
            ("plain-", 1, NodeTemplate(cpu="8", memory="32Gi")),
            ("nogpu-", 1, NodeTemplate(cpu="8", memory="32Gi", labels=GPU_LABELS)),
            ("gpu-", 1, NodeTemplate(cpu="8", memory="32Gi", gpus=2, labels=GPU_LABELS)),
        ])
        try:
            manifest = yaml.safe_load((EXAMPLES / "gpu-pod.yaml").read_text())
            await client.resource("pods").create(manifest, namespace="default")
            pod = await wait_pod(client, "gpu-pod",
                                 lambda p: (p.get("status") or {}).get("phase") == "Running")
            assert pod["spec"]["nodeName"] == "gpu-0"
            assert pod["status"]["podIP"].startswith("127.")
            events = await client.resource("events").list(
                namespace="default", field_selector="involvedObject.name=gpu-pod")
            assert "Successfully assigned default/gpu-pod to gpu-0" in [
                e["message"] for e in events["items"] if e["reason"] == "Scheduled"]
        finally:
            await stop_cluster(nodes, sched)


async def test_gpu_pod_stays_pending_with_upstream_message(apiserver):
    async with apiserver.client() as client:
        nodes, sched = await start_cluster(client, [
            ("plain-", 2, NodeTemplate(cpu="8", memory="32Gi")),
            ("nogpu-", 1, NodeTemplate(cpu="8", memory="32Gi", labels=GPU_LABELS)),
        ])
        try:
            manifest = yaml.safe_load((EXAMPLES / "gpu-pod.yaml").read_text())
            await client.resource("pods").create(manifest, namespace="default")
            pod = await wait_pod(client, "gpu-pod",
                                 lambda p: scheduled_condition(p).get("status") == "False")
            cond = scheduled_condition(pod)
            expected = ("0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) "
                        "didn't match Pod's node affinity/selector. preemption: 0/3 nodes are "
                        "available: 1 No preemption victims found for incoming pod, "
                        "2 Preemption is not helpful for scheduling..")
            assert cond["reason"] == "Unschedulable"
            assert cond["message"] == expected
            assert not pod["spec"].get("nodeName")
            await sched.recorder.close()
            events = await client.resource("events").list(
                namespace="default", field_selector="involvedObject.name=gpu-pod")
            failed = [e for e in events["items"] if e["reason"] == "FailedScheduling"]
            assert failed and failed[0]["type"] == "Warning"
            assert failed[0]["message"] == expected

            # A fitting node appears: the pending pod is retried and lands there.
            extra = HollowNodes(client, count=1, name_prefix="gpu-", lease_interval=0,
                                capacity=NodeTemplate(cpu="8", memory="32Gi", gpus=1,
                                                      labels=GPU_LABELS))
            await extra.start()
            nodes.append(extra)
            pod = await wait_pod(client, "gpu-pod", lambda p: p["spec"].get("nodeName"))
            assert pod["spec"]["nodeName"] == "gpu-0"
        finally:
            await stop_cluster(nodes, sched)
