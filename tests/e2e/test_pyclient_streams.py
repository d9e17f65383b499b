"""The official ``kubernetes`` Python client's streams against a process-runtime kubelet:
exec and port-forward (``kubernetes.stream``, over WebSocket channels)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config
from kubernetes.stream import portforward, stream

from tinykube.api import pods as podutil
from tinykube.testing.kubelet import wait_for_pod

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "node"


@pytest.fixture
async def core(apiserver, kubelet_factory):
    await kubelet_factory("node-1")
    pod = yaml.safe_load((EXAMPLES / "hello-pod.yaml").read_text())
    pod["spec"]["nodeName"] = "node-1"
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        await wait_for_pod(client, "default", "hello", podutil.is_ready, timeout=30)
    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    yield k8s.CoreV1Api(api_client)
    api_client.close()


def _exec(core: k8s.CoreV1Api) -> str:
    return stream(core.connect_get_namespaced_pod_exec, "hello", "default",
                  command=["sh", "-c", "echo out; echo err >&2"], stdout=True, stderr=True, stdin=False, tty=False)


def _forward(core: k8s.CoreV1Api) -> tuple[bytes, str | None, bytes, str | None]:
    """A GET through port 8080 and a connection to port 9 (nothing listens there)."""
    forwarded = portforward(core.connect_get_namespaced_pod_portforward, "hello", "default", ports="8080,9")
    try:
        web = forwarded.socket(8080)
        web.setblocking(True)
        web.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := web.recv(65536):
            answer += chunk
        web.close()
        refused = forwarded.socket(9)
        refused.setblocking(True)
        nothing = refused.recv(100)
        return answer, forwarded.error(8080), nothing, forwarded.error(9)
    finally:
        forwarded.close()


async def test_exec_through_the_python_client(core):
    assert await asyncio.to_thread(_exec, core) == "out\nerr\n"


async def test_port_forward_through_the_python_client(core):
    answer, error, nothing, refused = await asyncio.wait_for(asyncio.to_thread(_forward, core), 30)
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"\r\n\r\nok\n")
    assert error is None
    assert nothing == b""
    assert refused.startswith("error forwarding port 9 to pod default/hello")
    assert refused.endswith("connect: connection refused")
