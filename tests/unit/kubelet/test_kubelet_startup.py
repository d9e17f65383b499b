"""Kubelet start-up details: pod CPU weights, registration retries, static pods first."""

import asyncio
import socket

from tinykube.client.rest import Client
from tinykube.kubelet import Kubelet, KubeletConfig
from tinykube.kubelet import kubelet as kubelet_mod


def _pod(name, *resources):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": f"c{i}", "image": "x", "command": ["sleep", "1"],
                                     "resources": r} for i, r in enumerate(resources)]}}


def test_pod_cgroup_cpu_shares_from_requests(tmp_path):
    kl = Kubelet(KubeletConfig(node_name="n1", runtime="fake", root_dir=str(tmp_path)))
    shares = lambda pod: kl.sandbox_config(pod).resources.cpu_shares  # noqa: E731
    assert shares(_pod("besteffort", {})) == 2
    assert shares(_pod("apiserver", {"requests": {"cpu": "250m"}})) == 256
    assert shares(_pod("two", {"requests": {"cpu": "100m"}}, {"requests": {"cpu": "1"}})) == 1126
    assert shares(_pod("limit-only", {"limits": {"cpu": "500m", "memory": "1Gi"}})) == 512


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_registration_retries_quickly_while_refused(tmp_path, monkeypatch):
    client = Client(f"http://127.0.0.1:{_closed_port()}")
    kl = Kubelet(KubeletConfig(node_name="n1", runtime="fake", root_dir=str(tmp_path), client=client))
    calls = []

    async def register():
        calls.append(asyncio.get_running_loop().time())
        await client.resource("nodes").get("n1")

    task = asyncio.ensure_future(kl._retry(register, "registering node"))
    await asyncio.sleep(0.75)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert len(calls) >= 5 and max(gaps) < kubelet_mod.RETRY_REFUSED + 0.1, gaps


async def test_other_errors_back_off(tmp_path):
    kl = Kubelet(KubeletConfig(node_name="n1", runtime="fake", root_dir=str(tmp_path)))
    calls = []

    async def register():
        calls.append(asyncio.get_running_loop().time())
        raise ConnectionError("server disconnected")

    task = asyncio.ensure_future(kl._retry(register, "registering node"))
    await asyncio.sleep(0.75)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(calls) == 3  # 0, 0.2, 0.6 (0.2 s doubling)


async def test_static_pods_start_without_api_and_manifest_watch_catches_new_files(tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "a.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: default}\n"
        "spec: {containers: [{name: c, image: x, command: [sleep, '60']}]}\n")
    kl = Kubelet(KubeletConfig(node_name="n1", runtime="fake", root_dir=str(tmp_path / "root"), port=0,
                               healthz_port=0, pod_manifest_path=str(manifests)))
    await kl.start()
    try:
        assert {p["metadata"]["name"] for p in kl.static_pods.values()} == {"a-n1"}
        (manifests / "b.yaml").write_text((manifests / "a.yaml").read_text().replace("name: a,", "name: b,"))
        for _ in range(100):
            if len(kl.static_pods) == 2:
                break
            await asyncio.sleep(0.02)
        assert {p["metadata"]["name"] for p in kl.static_pods.values()} == {"a-n1", "b-n1"}
        assert kl.config.port and kl.server is not None
    finally:
        await kl.stop()
