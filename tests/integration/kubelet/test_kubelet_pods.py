"""A kubelet with the process runtime runs real pods from the API server."""

from __future__ import annotations

import asyncio

import aiohttp

from tinykube.api import pods as podutil
from tinykube.testing.kubelet import wait_for_pod


def pod_manifest(name: str, command: list[str], **spec) -> dict:
    container = {"name": "main", "image": "python:3.11", "command": command}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": "node-1", "containers": [container], "terminationGracePeriodSeconds": 2,
                     **spec}}


def running_and_ready(pod: dict) -> bool:
    return podutil.phase(pod) == "Running" and podutil.is_ready(pod)


async def test_pod_runs_and_is_ready(apiserver, kubelet_factory):
    kubelet = await kubelet_factory()
    async with apiserver.client() as client:
        await client.resource("pods").create(pod_manifest(
            "hello", ["python3", "-c", "import time; print('hello from tinykube', flush=True); time.sleep(60)"]),
            namespace="default")
        pod = await wait_for_pod(client, "default", "hello", running_and_ready)
        cs = pod["status"]["containerStatuses"][0]
        assert cs["ready"] and cs["started"] and "running" in cs["state"]
        assert cs["containerID"].startswith("tinykube-process://")
        assert pod["status"]["podIP"]
        types = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert types == {"PodReadyToStartContainers": "True", "Initialized": "True", "ContainersReady": "True",
                         "Ready": "True", "PodScheduled": "True"}
        url = f"https://127.0.0.1:{kubelet.server.port}/containerLogs/default/hello/main"
        async with aiohttp.ClientSession() as http:
            async with http.get(url, params={"follow": "true"}, ssl=False) as resp:
                assert resp.status == 200
                line = await asyncio.wait_for(resp.content.readline(), 10)
                assert line == b"hello from tinykube\n"
            async with http.get(url, params={"timestamps": "true"}, ssl=False) as resp:
                stamp, _, text = (await resp.text()).partition(" ")
                assert text == "hello from tinykube\n" and stamp.endswith("Z")
