"""As root, pods get what a container runtime would give them: a network namespace on the
node bridge, mounted volumes, tmpfs emptyDirs and enforced memory limits."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tinykube.api import pods as podutil
from tinykube.kubelet.runtime.process import can_isolate, can_network
from tinykube.testing.kubelet import wait_for_pod

pytestmark = [pytest.mark.root, pytest.mark.skipif(not can_isolate(), reason="needs root on Linux")]

SERVER = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
          "s.bind(('0.0.0.0', 8080)); s.listen()\n"
          "while True:\n c,_=s.accept(); c.sendall(open('/etc/config/greeting').read().encode()); c.close()")


@pytest.mark.skipif(not can_network(), reason="pod networks need iptables")
async def test_pod_ip_volumes_and_tmpfs(apiserver, kubelet_factory):
    kubelet = await kubelet_factory()
    async with apiserver.client() as client:
        await client.resource("configmaps").create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "greeting"},
             "data": {"greeting": "hello over the bridge"}}, namespace="default")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "net"},
               "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 1,
                        "volumes": [{"name": "config", "configMap": {"name": "greeting"}},
                                    {"name": "cache", "emptyDir": {"medium": "Memory"}}],
                        "containers": [{"name": "main", "image": "python:3.11", "command": ["python3", "-c", SERVER],
                                        "volumeMounts": [{"name": "config", "mountPath": "/etc/config"},
                                                         {"name": "cache", "mountPath": "/cache"}],
                                        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}
        await client.resource("pods").create(pod, namespace="default")
        pod = await wait_for_pod(client, "default", "net", podutil.is_ready)
    ip = pod["status"]["podIP"]
    assert ip.startswith(kubelet.config.pod_cidr.rsplit(".", 2)[0] + ".")
    reader, writer = await asyncio.open_connection(ip, 8080)
    assert await reader.read() == b"hello over the bridge"
    writer.close()
    worker = kubelet.workers.find("default", "net")
    res = await kubelet.runtime.exec_sync(worker.container_record("main").current.id,
                                          ["sh", "-c", "stat -f -c %T /cache; ip -4 -o addr show eth0"], 10)
    fs, addr = res.stdout.decode().splitlines()
    assert fs == "tmpfs" and ip in addr


async def test_memory_limit_gives_oomkilled(apiserver, kubelet_factory):
    await kubelet_factory()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hog"},
           "spec": {"nodeName": "node-1", "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "python:3.11",
                                    "command": ["python3", "-c", "x = bytearray(300 * 1024 * 1024)"],
                                    "resources": {"limits": {"memory": "64Mi"}}}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        pod = await wait_for_pod(client, "default", "hog", lambda p: podutil.phase(p) == "Failed")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137


async def test_container_sees_its_pod_and_only_it_is_in_its_cgroup(apiserver, kubelet_factory):
    """/proc inside the container shows the pod's PID namespace (its PID 1 is the sandbox's
    pause process), and the container's cgroup holds the workload, not the shim that
    started it."""
    kubelet = await kubelet_factory()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pidns"},
           "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]},
                                   {"name": "side", "image": "busybox", "command": ["sleep", "3601"]}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        await wait_for_pod(client, "default", "pidns", podutil.is_ready)
    worker = kubelet.workers.find("default", "pidns")
    main = worker.container_record("main").current
    res = await kubelet.runtime.exec_sync(main.id, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                                          "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"], 10)
    init, *commands = res.stdout.decode().splitlines()
    assert "shim.py" in init  # the pause process: PID 1 of the pod
    assert "sleep 3600 " in commands and "sleep 3601 " in commands
    assert len(commands) <= 5 and not any("pytest" in c for c in commands)  # no host process is visible
    container = kubelet.runtime.containers[main.id]
    assert kubelet.runtime.cgroups.procs(container.cgroup) == [main.pid]
    # an exec's command runs in the container's cgroup, the shim that runs it does not
    session = await kubelet.runtime.exec(main.id, ["sleep", "30"], tty=False, stdin=False)
    try:
        assert sorted(kubelet.runtime.cgroups.procs(container.cgroup)) == sorted([main.pid, session.proc.pid])
    finally:
        session.proc.send_signal(signal.SIGKILL)
        await session.proc.wait()
    assert kubelet.runtime.cgroups.procs(container.cgroup) == [main.pid]


async def test_container_run_as_another_user_sees_its_pod(apiserver, kubelet_factory):
    """A container with runAsUser (started by a forked child, not posix_spawn) runs as
    that user and still sees its pod's /proc."""
    kubelet = await kubelet_factory()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nobody"},
           "spec": {"nodeName": "node-1", "restartPolicy": "Never",
                    "securityContext": {"runAsUser": 65534, "runAsGroup": 65534},
                    "containers": [{"name": "main", "image": "busybox", "command": [
                        "sh", "-c", "id -u; id -g; tr '\\0' ' ' < /proc/1/cmdline; echo"]}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        await wait_for_pod(client, "default", "nobody", lambda p: podutil.phase(p) == "Succeeded")
    status = kubelet.workers.find("default", "nobody").container_record("main").current
    with open(status.log_path) as f:
        lines = [line.rstrip("\n").split(" ", 3)[3] for line in f]
    assert lines[:2] == ["65534", "65534"]
    assert "shim.py" in lines[2]  # PID 1 is the pod's sandbox, not the host's init
