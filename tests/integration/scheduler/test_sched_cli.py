"""`tinykube scheduler` and `tinykube hollow-nodes` as processes against a real API server."""

from __future__ import annotations

import asyncio
import signal
import sys

from tinykube.scheduler.testutil import make_pod


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tinykube.cli.main", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def _stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    except asyncio.TimeoutError:
        proc.kill()
        _, err = await proc.communicate()
    return proc.returncode, err.decode()


async def test_processes_register_nodes_and_schedule(apiserver):
    async with apiserver.client() as client:
        nodes = client.resource("nodes")
        hollow = await _spawn("hollow-nodes", "--kubeconfig", apiserver.kubeconfig,
                              "--count", "2", "--gpus", "1", "--label", "tier=gpu",
                              "--taint", "dedicated=gpu:NoSchedule", "--name-prefix", "cli-")
        sched = await _spawn("scheduler", "--kubeconfig", apiserver.kubeconfig,
                             "--secure-port", "0", "--no-leader-elect")
        try:
            listed = await nodes.list()
            rv = listed["metadata"]["resourceVersion"]
            names = {n["metadata"]["name"] for n in listed["items"]}

            async def both_nodes():
                async for etype, obj in nodes.watch(resource_version=rv):
                    if etype == "ADDED":
                        names.add(obj["metadata"]["name"])
                    if {"cli-0", "cli-1"} <= names:
                        return
            if not {"cli-0", "cli-1"} <= names:
                await asyncio.wait_for(both_nodes(), 30)
            node = await nodes.get("cli-0")
            assert node["metadata"]["labels"]["tier"] == "gpu"
            assert node["spec"]["taints"] == [{"key": "dedicated", "value": "gpu",
                                               "effect": "NoSchedule"}]

            pod = make_pod("tolerant", cpu="100m", tolerations=[
                {"key": "dedicated", "operator": "Equal", "value": "gpu",
                 "effect": "NoSchedule"}])
            del pod["metadata"]["uid"]
            created = await client.resource("pods").create(pod, namespace="default")

            async def running():
                async for _, obj in client.resource("pods").watch(
                        namespace="default", field_selector="metadata.name=tolerant",
                        resource_version=created["metadata"]["resourceVersion"]):
                    if (obj.get("status") or {}).get("phase") == "Running":
                        return obj
            obj = await asyncio.wait_for(running(), 30)
            assert obj["spec"]["nodeName"] in ("cli-0", "cli-1")
        finally:
            rc_s, err_s = await _stop(sched)
            rc_h, err_h = await _stop(hollow)
        assert rc_s == 0, err_s
        assert rc_h == 0, err_h
        assert "kube-scheduler running without leader election" in err_s
