"""Container lifecycle on a process-runtime kubelet: probes, restarts, exec, deletion, static pods."""

from __future__ import annotations

import asyncio
import json
import os

import aiohttp
import yaml

from tinykube.api import pods as podutil
from tinykube.kubelet.runtime.process import can_isolate
from tinykube.testing.kubelet import wait_for_pod

SLEEP = ["python3", "-c", "import time; time.sleep(300)"]


def pod_manifest(name: str, command: list[str], *, container: dict | None = None, **spec) -> dict:
    c = {"name": "main", "image": "python:3.11", "command": command, **(container or {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": "node-1", "containers": [c], "terminationGracePeriodSeconds": 2, **spec}}


def container_status(pod: dict) -> dict:
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


async def exec_ws(port: int, pod: str, command: list[str], protocol: str = "v5.channel.k8s.io",
                  stdin: bytes | None = None) -> tuple[bytes, bytes, dict]:
    params = [("command", c) for c in command] + [("stdout", "1"), ("stderr", "1")]
    if stdin is not None:
        params.append(("stdin", "1"))
    url = f"https://127.0.0.1:{port}/exec/default/{pod}/main"
    out, err, status = b"", b"", {}
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, params=params, protocols=[protocol], ssl=False) as ws:
            assert ws.protocol == protocol
            if stdin is not None:
                await ws.send_bytes(b"\x00" + stdin)
                await ws.send_bytes(b"\xff\x00")  # v5: close stdin
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                channel, data = msg.data[0], msg.data[1:]
                if channel == 1:
                    out += data
                elif channel == 2:
                    err += data
                elif channel == 3:
                    status = json.loads(data)
    return out, err, status


async def test_exec_over_websocket(apiserver, kubelet_factory):
    kubelet = await kubelet_factory()
    async with apiserver.client() as client:
        await client.resource("pods").create(pod_manifest("shell", SLEEP), namespace="default")
        await wait_for_pod(client, "default", "shell", podutil.is_ready)
    out, _, status = await exec_ws(kubelet.server.port, "shell", ["cat", "/etc/hostname"])
    assert status == {"metadata": {}, "status": "Success"}
    if can_isolate():
        assert out == b"shell\n"
    out, err, status = await exec_ws(kubelet.server.port, "shell", ["sh", "-c", "echo oops >&2; exit 3"],
                                     protocol="v4.channel.k8s.io")
    assert err == b"oops\n"
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    out, _, status = await exec_ws(kubelet.server.port, "shell", ["cat"], stdin=b"round trip")
    assert out == b"round trip" and status["status"] == "Success"


async def test_failing_liveness_probe_restarts_container(apiserver, kubelet_factory):
    kubelet = await kubelet_factory()
    probe = {"exec": {"command": ["cat", "/nonexistent/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}
    async with apiserver.client() as client:
        await client.resource("pods").create(
            pod_manifest("live", SLEEP, container={"livenessProbe": probe}), namespace="default")
        pod = await wait_for_pod(client, "default", "live", lambda p: container_status(p).get("restartCount", 0) >= 1)
        assert container_status(pod)["lastState"]["terminated"]["exitCode"] in (137, 143)
        events = (await client.resource("events").list(namespace="default"))["items"]
        reasons = {(e["reason"], e["message"]) for e in events}
        assert ("Killing", "Container main failed liveness probe, will be restarted") in reasons
        assert any(r == "Unhealthy" and m.startswith("Liveness probe failed: ") for r, m in reasons)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"https://127.0.0.1:{kubelet.server.port}/metrics/probes", ssl=False) as resp:
            text = await resp.text()
    assert 'prober_probe_total{container="main",namespace="default",pod="live"' in text
    assert 'probe_type="Liveness",result="failed"' in text


async def test_crashing_container_reaches_crashloop_backoff(apiserver, kubelet_factory):
    kubelet = await kubelet_factory(crashloop_base_backoff=1.0)
    async with apiserver.client() as client:
        created = await client.resource("pods").create(
            pod_manifest("crash", ["sh", "-c", "echo dying; exit 1"]), namespace="default")
        uid = created["metadata"]["uid"]
        pod = await wait_for_pod(client, "default", "crash",
                                 lambda p: container_status(p).get("state", {}).get("waiting", {}).get("reason")
                                 == "CrashLoopBackOff")
        cs = container_status(pod)
        assert cs["restartCount"] >= 1
        assert cs["state"]["waiting"]["message"].startswith("back-off ")
        assert cs["state"]["waiting"]["message"].endswith(f"restarting failed container=main pod=crash_default({uid})")
        assert cs["lastState"]["terminated"]["exitCode"] == 1
        assert cs["lastState"]["terminated"]["reason"] == "Error"
        assert pod["status"]["phase"] == "Running"
        # the restart after the back-off happens and is counted
        await wait_for_pod(client, "default", "crash", lambda p: container_status(p).get("restartCount", 0) >= 2)
    url = f"https://127.0.0.1:{kubelet.server.port}/containerLogs/default/crash/main"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params={"previous": "true"}, ssl=False) as resp:
            assert resp.status == 200 and await resp.text() == "dying\n"


async def test_not_ready_pod_has_ready_false(apiserver, kubelet_factory):
    await kubelet_factory()
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1}
    async with apiserver.client() as client:
        await client.resource("pods").create(
            pod_manifest("unready", SLEEP, container={"readinessProbe": probe}), namespace="default")
        pod = await wait_for_pod(client, "default", "unready",
                                 lambda p: podutil.phase(p) == "Running" and container_status(p).get("started"))
        ready = podutil.condition(pod, "Ready")
        assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
        assert ready["message"] == "containers with unready status: [main]"
        assert container_status(pod)["ready"] is False


async def test_restart_policy_never_and_init_containers(apiserver, kubelet_factory):
    await kubelet_factory()
    manifest = pod_manifest("job", ["sh", "-c", "test -f /tmp/tinykube-init-$POD_UID && echo done"],
                            restartPolicy="Never",
                            container={"env": [{"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}]})
    manifest["spec"]["initContainers"] = [
        {"name": "first", "image": "busybox", "command": ["sh", "-c", "touch /tmp/tinykube-init-$POD_UID"],
         "env": [{"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}}]}]
    async with apiserver.client() as client:
        created = await client.resource("pods").create(manifest, namespace="default")
        try:
            pod = await wait_for_pod(client, "default", "job", lambda p: podutil.phase(p) == "Succeeded")
        finally:
            marker = f"/tmp/tinykube-init-{created['metadata']['uid']}"
            if os.path.exists(marker):
                os.unlink(marker)
        init = pod["status"]["initContainerStatuses"][0]
        assert init["state"]["terminated"]["reason"] == "Completed"
        main = container_status(pod)
        assert main["state"]["terminated"]["exitCode"] == 0
        assert podutil.condition(pod, "Ready")["reason"] == "PodCompleted"


async def test_termination_messages_from_the_file_and_from_the_log(apiserver, kubelet_factory):
    """The message a container writes to its terminationMessagePath (a file of its own, as
    root, where the pod has a mount namespace), or with FallbackToLogsOnError the end of
    its log, becomes state.terminated.message; a container that writes none has none."""
    await kubelet_factory()
    containers = [
        {"name": "fallback", "image": "busybox", "terminationMessagePolicy": "FallbackToLogsOnError",
         "command": ["sh", "-c", "seq 1 100; echo last words; exit 2"]},
        {"name": "silent", "image": "busybox", "command": ["sh", "-c", "echo not a message; exit 1"]}]
    if can_isolate():
        containers.append({"name": "file", "image": "busybox", "terminationMessagePath": "/tmp/why",
                           "securityContext": {"runAsUser": 65534},
                           "command": ["sh", "-c", "printf bye-$((6*7)) > /tmp/why"]})
    manifest = pod_manifest("ends", [], restartPolicy="Never")
    manifest["spec"]["containers"] = containers
    async with apiserver.client() as client:
        await client.resource("pods").create(manifest, namespace="default")
        pod = await wait_for_pod(client, "default", "ends", lambda p: podutil.phase(p) == "Failed")
    ended = {cs["name"]: cs["state"]["terminated"] for cs in pod["status"]["containerStatuses"]}
    tail = "".join(f"{i}\n" for i in range(22, 101)) + "last words\n"  # the last 80 lines
    assert ended["fallback"]["message"] == tail and ended["fallback"]["exitCode"] == 2
    assert "message" not in ended["silent"] and ended["silent"]["exitCode"] == 1
    if can_isolate():
        assert ended["file"] == {**ended["file"], "message": "bye-42", "exitCode": 0, "reason": "Completed"}
        if os.path.exists("/tmp/why"):  # the mount point, kept on the host until the container is removed
            with open("/tmp/why") as f:
                assert f.read() == ""  # the container wrote to a file of its own


async def test_deleting_pod_stops_every_process_and_confirms(apiserver, kubelet_factory):
    kubelet = await kubelet_factory()
    script = "sleep 300 & echo $! > /dev/null; exec python3 -c 'import time; time.sleep(300)'"
    async with apiserver.client() as client:
        await client.resource("pods").create(pod_manifest("doomed", ["sh", "-c", script]), namespace="default")
        await wait_for_pod(client, "default", "doomed", podutil.is_ready)
        worker = kubelet.workers.find("default", "doomed")
        rec = worker.container_record("main")
        pid = rec.current.pid
        sandbox = kubelet.runtime.sandboxes[worker.sandbox_id]
        pids = kubelet.runtime.cgroups.procs_recursive(sandbox.cgroup) if sandbox.cgroup else [pid]
        assert pid in pids or not sandbox.cgroup
        await client.resource("pods").delete("doomed", namespace="default")
        pods = client.resource("pods")

        async def gone() -> None:
            while True:
                listed = await pods.list(namespace="default", field_selector="metadata.name=doomed")
                if not listed["items"]:
                    return
                async for kind, _obj in pods.watch(namespace="default", field_selector="metadata.name=doomed",
                                                    resource_version=listed["metadata"]["resourceVersion"],
                                                    timeout_seconds=10):
                    if kind == "DELETED":
                        return

        await asyncio.wait_for(gone(), 15)
        await asyncio.wait_for(worker.finished.wait(), 10)
    for p in pids:
        assert not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split()[2] == "Z"


async def test_static_pod_runs_and_is_mirrored(apiserver, kubelet_factory, tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static-web", "namespace": "kube-system"},
         "spec": {"containers": [{"name": "web", "image": "python:3.11", "command": SLEEP}]}}))
    kubelet = await kubelet_factory("node-1", pod_manifest_path=str(manifests))
    async with apiserver.client() as client:
        mirror = await wait_for_pod(client, "kube-system", "static-web-node-1", podutil.is_ready)
        ann = mirror["metadata"]["annotations"]
        assert ann["kubernetes.io/config.source"] == "file"
        assert ann["kubernetes.io/config.mirror"] == ann["kubernetes.io/config.hash"]
        owner = mirror["metadata"]["ownerReferences"][0]
        assert owner["kind"] == "Node" and owner["name"] == "node-1"
        # deleting the mirror pod does not stop the static pod; the mirror comes back
        await client.resource("pods").delete("static-web-node-1", namespace="kube-system")
        again = await wait_for_pod(client, "kube-system", "static-web-node-1",
                                   lambda p: p["metadata"]["uid"] != mirror["metadata"]["uid"]
                                   and not p["metadata"].get("deletionTimestamp"))
        assert again["spec"]["nodeName"] == "node-1"
        assert len(kubelet.workers.workers) == 1
        # removing the manifest stops the pod and removes the mirror
        (manifests / "web.yaml").unlink()
        worker = next(iter(kubelet.workers.workers.values()))
        await asyncio.wait_for(worker.finished.wait(), 10)
        pods = client.resource("pods")

        async def mirror_gone() -> None:
            while True:
                listed = await pods.list(namespace="kube-system", field_selector="metadata.name=static-web-node-1")
                if not listed["items"]:
                    return
                async for kind, _obj in pods.watch(namespace="kube-system",
                                                    field_selector="metadata.name=static-web-node-1",
                                                    resource_version=listed["metadata"]["resourceVersion"],
                                                    timeout_seconds=10):
                    if kind == "DELETED":
                        return

        await asyncio.wait_for(mirror_gone(), 15)


async def test_static_pods_start_before_the_api_server(tmp_path):
    """`tinykube up` runs the API server as a static pod: the kubelet cannot wait for it."""
    import socket

    from tinykube.apiserver.server import APIServer, APIServerConfig
    from tinykube.client.rest import Client
    from tinykube.kubelet import Kubelet, KubeletConfig
    from tinykube.testing.kubelet import (
        private_cgroup_parent, private_network, release_network, remove_private_cgroup_parent,
    )

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "early.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "early"},
         "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "300"]}]}}))
    client = Client(f"http://127.0.0.1:{port}")
    net = private_network()
    kubelet = Kubelet(KubeletConfig(node_name="node-1", client=client, root_dir=str(tmp_path / "kubelet"),
                                    port=0, healthz_port=0, pod_manifest_path=str(manifests),
                                    remove_bridge_on_stop=True, cgroup_parent=private_cgroup_parent(net), **net))
    server = None
    try:
        await kubelet.start()
        worker = next(iter(kubelet.workers.workers.values()))

        async def running() -> None:
            while not (worker.container_record("main") and worker.container_record("main").current):
                await asyncio.sleep(0.05)  # nothing to watch without an API server: look again

        await asyncio.wait_for(running(), 10)  # runs with no API server at all
        server = APIServer(APIServerConfig(store_url="memory://", bind_address="127.0.0.1", secure_port=port))
        await server.start()
        async with Client(server.url) as api:
            mirror = await wait_for_pod(api, "default", "early-node-1", podutil.is_ready, timeout=30)
            assert mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    finally:
        await kubelet.stop()
        await client.close()
        remove_private_cgroup_parent(net)
        release_network(net)
        if server is not None:
            await server.stop()


async def test_prestop_hook_runs_before_termination(apiserver, kubelet_factory, tmp_path):
    marker = tmp_path / "prestop-ran"
    await kubelet_factory()
    hook = {"preStop": {"exec": {"command": ["sh", "-c", f"echo stopping > {marker}"]}}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod_manifest("hooked", SLEEP, container={"lifecycle": hook}),
                                             namespace="default")
        await wait_for_pod(client, "default", "hooked", podutil.is_ready)
        await client.resource("pods").delete("hooked", namespace="default")
        pods = client.resource("pods")

        async def gone() -> None:
            while (await pods.list(namespace="default", field_selector="metadata.name=hooked"))["items"]:
                listed = await pods.list(namespace="default", field_selector="metadata.name=hooked")
                async for kind, _obj in pods.watch(namespace="default", field_selector="metadata.name=hooked",
                                                    resource_version=listed["metadata"]["resourceVersion"],
                                                    timeout_seconds=10):
                    if kind == "DELETED":
                        return

        await asyncio.wait_for(gone(), 20)
    assert marker.read_text() == "stopping\n"
