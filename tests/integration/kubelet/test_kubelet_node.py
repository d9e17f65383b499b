"""Node registration, heartbeats, admission and the kubelet's own endpoints."""

from __future__ import annotations

import aiohttp

from tinykube.api import pods as podutil
from tinykube.testing.kubelet import wait_for_pod


async def test_node_registers_with_capacity_conditions_and_lease(apiserver, kubelet_factory):
    kubelet = await kubelet_factory("node-1", node_labels={"node-role.kubernetes.io/worker": ""})
    await kubelet.registered.wait()
    async with apiserver.client() as client:
        node = await client.resource("nodes").get("node-1")
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == "node-1"
        assert labels["kubernetes.io/os"] == "linux" and labels["kubernetes.io/arch"]
        assert "node-role.kubernetes.io/worker" in labels
        status = node["status"]
        for key in ("cpu", "memory", "pods", "ephemeral-storage"):
            assert key in status["capacity"] and key in status["allocatable"]
        assert status["capacity"]["pods"] == "110"
        conds = {c["type"]: c for c in status["conditions"]}
        assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
        assert conds["Ready"]["message"] == "kubelet is posting ready status"
        assert conds["MemoryPressure"]["reason"] == "KubeletHasSufficientMemory"
        assert conds["DiskPressure"]["reason"] == "KubeletHasNoDiskPressure"
        assert conds["PIDPressure"]["reason"] == "KubeletHasSufficientPID"
        info = status["nodeInfo"]
        assert info["kubeletVersion"] == "v1.32.0"
        assert info["containerRuntimeVersion"] == "tinykube-process://0.1.0"
        assert info["kernelVersion"] and info["osImage"]
        assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == kubelet.server.port
        assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
        await kubelet.renew_lease()
        lease = await client.resource("leases", "coordination.k8s.io").get("node-1", namespace="kube-node-lease")
        assert lease["spec"]["holderIdentity"] == "node-1"
        assert lease["spec"]["leaseDurationSeconds"] == 40
        assert lease["spec"]["renewTime"]


async def test_pod_that_does_not_fit_is_rejected_out_of_cpu(apiserver, kubelet_factory):
    await kubelet_factory("node-1", runtime="fake", capacity={"cpu": "1"})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
           "spec": {"nodeName": "node-1", "containers": [
               {"name": "c", "image": "x", "resources": {"requests": {"cpu": "2"}}}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        got = await wait_for_pod(client, "default", "big", lambda p: podutil.phase(p) == "Failed")
        assert got["status"]["reason"] == "OutOfcpu"
        assert got["status"]["message"] == ("Pod was rejected: Node didn't have enough resource: cpu, "
                                            "requested: 2000, used: 0, capacity: 1000")



async def test_admission_counts_running_pods_after_their_status_updates(apiserver, kubelet_factory):
    """The requests of admitted pods still count once their objects have been replaced by
    later watch events (status updates): the next pod that does not fit is rejected."""
    await kubelet_factory("node-1", runtime="fake", capacity={"cpu": "1"})

    def pod(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": "node-1", "containers": [
                    {"name": "c", "image": "x", "resources": {"requests": {"cpu": "600m"}}}]}}

    async with apiserver.client() as client:
        await client.resource("pods").create(pod("first"), namespace="default")
        await wait_for_pod(client, "default", "first", lambda p: podutil.phase(p) == "Running")
        await client.resource("pods").patch("first", {"metadata": {"labels": {"seen": "yes"}}},
                                            namespace="default", patch_type="merge")
        await client.resource("pods").create(pod("second"), namespace="default")
        got = await wait_for_pod(client, "default", "second", lambda p: podutil.phase(p) == "Failed")
        assert got["status"]["message"] == ("Pod was rejected: Node didn't have enough resource: cpu, "
                                            "requested: 600, used: 600, capacity: 1000")


async def test_memory_and_pod_count_are_admitted_in_bytes_and_pods(apiserver, kubelet_factory):
    """A second pod that would overrun the node's memory is rejected with the sizes in
    bytes; one more pod than ``pods`` allows is rejected as OutOfpods."""
    await kubelet_factory("node-1", runtime="fake", capacity={"memory": "1Gi", "pods": "2"})

    def pod(name: str, memory: str = "") -> dict:
        resources = {"requests": {"memory": memory}} if memory else {}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x", "resources": resources}]}}

    async with apiserver.client() as client:
        pods = client.resource("pods")
        await pods.create(pod("first", "600Mi"), namespace="default")
        await wait_for_pod(client, "default", "first", lambda p: podutil.phase(p) == "Running")
        await pods.create(pod("second", "600Mi"), namespace="default")
        got = await wait_for_pod(client, "default", "second", lambda p: podutil.phase(p) == "Failed")
        assert got["status"]["reason"] == "OutOfmemory"
        assert got["status"]["message"] == ("Pod was rejected: Node didn't have enough resource: memory, "
                                            "requested: 629145600, used: 629145600, capacity: 1073741824")
        await pods.create(pod("third"), namespace="default")
        await wait_for_pod(client, "default", "third", lambda p: podutil.phase(p) == "Running")
        await pods.create(pod("fourth"), namespace="default")
        got = await wait_for_pod(client, "default", "fourth", lambda p: podutil.phase(p) == "Failed")
        assert got["status"]["message"] == ("Pod was rejected: Node didn't have enough resource: pods, "
                                            "requested: 1, used: 2, capacity: 2")


async def test_healthz_pods_and_metrics_endpoints(apiserver, kubelet_factory):
    kubelet = await kubelet_factory("node-1", runtime="fake")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "x"}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        await wait_for_pod(client, "default", "p", lambda p: podutil.phase(p) == "Running")
    base = f"https://127.0.0.1:{kubelet.server.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{kubelet.server.healthz_port}/healthz") as resp:
            assert resp.status == 200 and await resp.text() == "ok"
        async with http.get(f"{base}/pods", ssl=False) as resp:
            podlist = await resp.json()
            assert podlist["kind"] == "PodList" and [p["metadata"]["name"] for p in podlist["items"]] == ["p"]
        async with http.get(f"{base}/metrics", ssl=False) as resp:
            text = await resp.text()
    assert "kubelet_running_pods 1.0" in text
    assert 'kubelet_running_containers{container_state="running"} 1.0' in text
    assert 'kubelet_node_name{node="node-1"} 1.0' in text
    assert "kubelet_pod_start_duration_seconds_count 1.0" in text
    assert "kubelet_pod_worker_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


async def test_without_isolation_pods_share_the_host_network_with_a_warning(apiserver, kubelet_factory):
    kubelet = await kubelet_factory("node-1", isolate=False)
    await kubelet.registered.wait()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
           "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "c", "image": "x", "command": ["sleep", "300"]}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        got = await wait_for_pod(client, "default", "plain", podutil.is_ready)
        assert got["status"]["podIP"] == "127.0.0.1" == got["status"]["hostIP"]
        await kubelet.recorder.close()  # flush the recorder's queue
        events = (await client.resource("events").list(namespace="default"))["items"]
    warnings = [e for e in events if e["involvedObject"]["kind"] == "Node" and e["type"] == "Warning"]
    assert warnings and "share the host's network namespace" in warnings[0]["message"]


async def test_summary_api_and_metrics_for_kubectl_top(apiserver, kubelet_factory, tmp_path):
    """A container that spins and holds 64 MiB: the kubelet's /stats/summary shows its CPU
    rate and working set, and metrics.k8s.io serves them as PodMetrics and NodeMetrics."""
    kubelet = await kubelet_factory("node-1")
    marker = tmp_path / "allocated"
    spin = f"x = b'x' * (64 << 20)\nopen({str(marker)!r}, 'w').close()\nwhile True: pass"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burn", "labels": {"app": "burn"}},
           "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 0, "containers": [{
               "name": "c", "image": "python", "command": ["python3", "-c", spin],
               "readinessProbe": {"exec": {"command": ["test", "-f", str(marker)]}, "periodSeconds": 1}}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        await wait_for_pod(client, "default", "burn", podutil.is_ready, timeout=30)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"https://127.0.0.1:{kubelet.server.port}/stats/summary", ssl=False) as resp:
            summary = await resp.json()
    assert summary["node"]["nodeName"] == "node-1"
    assert summary["node"]["cpu"]["usageNanoCores"] > 0 and summary["node"]["memory"]["workingSetBytes"] > 0
    (burn,) = [p for p in summary["pods"] if p["podRef"]["name"] == "burn"]
    (c,) = burn["containers"]
    assert c["name"] == "c" and c["cpu"]["usageNanoCores"] > 100_000_000  # it spins: well over 0.1 core
    assert c["memory"]["workingSetBytes"] >= 64 << 20
    status, metrics = await apiserver.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burn")
    assert status == 200 and metrics["kind"] == "PodMetrics" and metrics["metadata"]["labels"] == {"app": "burn"}
    usage = metrics["containers"][0]["usage"]
    assert usage["cpu"].endswith("n") and int(usage["memory"].removesuffix("Ki")) >= 64 << 10
    _, nodes = await apiserver.request("GET", "/apis/metrics.k8s.io/v1beta1/nodes")
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["node-1"]
    _, none = await apiserver.request("GET", "/apis/metrics.k8s.io/v1beta1/pods", params={"labelSelector": "app=web"})
    assert none["items"] == []
    status, _ = await apiserver.request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/absent")
    assert status == 404
