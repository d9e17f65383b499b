"""`tinykube kubelet` as its own process: config file, static pods, and what a SIGKILL leaves."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys

import yaml

from tinykube.kubelet.runtime.process import can_isolate
from tinykube.testing.processes import command_line
from tinykube.testing.kubelet import (
    private_cgroup_parent, private_network, release_network, remove_private_cgroup_parent,
)

CONFIG = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
          "clusterDNS": ["10.96.0.10"], "clusterDomain": "cluster.local", "maxPods": 110, "podPidsLimit": 4096,
          "healthzBindAddress": "127.0.0.1", "healthzPort": 0, "port": 0, "readOnlyPort": 0,
          "cgroupDriver": "cgroupfs", "authentication": {"webhook": {"enabled": True}},
          "authorization": {"mode": "Webhook"}}


def kubelet_command(tmp_path, net, *extra: str) -> list[str]:
    config = tmp_path / "kubelet-config.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "cgroupRoot": private_cgroup_parent(net)}))
    return [sys.executable, "-m", "tinykube", "kubelet", "--config", str(config), "--node-name", "cli-node",
            "--root-dir", str(tmp_path / "root"), "--pod-manifest-path", str(tmp_path / "manifests"),
            "--bridge", net["bridge"], "--pod-cidr", net["pod_cidr"], *extra]


def test_systemd_cgroup_driver_is_a_clear_error(tmp_path):
    config = tmp_path / "kubelet-config.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "cgroupDriver": "systemd"}))
    proc = subprocess.run([sys.executable, "-m", "tinykube", "kubelet", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert 'error: cgroupDriver: Unsupported value: "systemd"' in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_static_pod_dies_with_a_killed_kubelet_and_leftovers_are_reclaimed(tmp_path):
    net = private_network()
    try:
        await _killed_kubelet_scenario(tmp_path, net)
    finally:
        subprocess.run(["ip", "link", "del", net["bridge"]], capture_output=True)
        remove_private_cgroup_parent(net)
        release_network(net)


async def _killed_kubelet_scenario(tmp_path, net) -> None:
    (tmp_path / "manifests").mkdir()
    marker = tmp_path / "started"
    seconds = str(900000 + secrets.randbelow(99999))  # a command line no other process has
    mountpoint = f"/tmp/tinykube-mountpoint-{seconds}"  # made on the host for the volume below
    (tmp_path / "manifests" / "sleeper.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
         "spec": {"volumes": [{"name": "scratch", "emptyDir": {}}],
                  "containers": [{"name": "c", "image": "busybox",
                                  "volumeMounts": [{"name": "scratch", "mountPath": f"{mountpoint}/data"}],
                                  "command": ["sh", "-c", f"touch {marker}; exec sleep {seconds}"]}]}}))
    cmd = kubelet_command(tmp_path, net)
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async def wait_marker() -> None:
            while not marker.exists():
                await asyncio.sleep(0.05)  # no API server to watch: the container writes this file
        await asyncio.wait_for(wait_marker(), 30)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def container_gone() -> None:
        while any(command_line(p) == f"sleep {seconds} " for p in _pids()):
            await asyncio.sleep(0.05)  # SIGKILL reaches the shims' children through PDEATHSIG

    await asyncio.wait_for(container_gone(), 10)
    if not can_isolate():
        return
    leftovers = list((tmp_path / "root" / "runtime-root" / "runtime").glob("sandbox-*.spec"))
    assert leftovers  # the killed kubelet could not clean up; the next one does
    again = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async def reclaimed() -> None:
            while any(p.exists() for p in leftovers):
                await asyncio.sleep(0.05)
        await asyncio.wait_for(reclaimed(), 30)
    finally:
        again.send_signal(signal.SIGTERM)
        await asyncio.wait_for(again.wait(), 30)
    # the mount point the killed kubelet made was removed by the next one, which then made
    # its own for the restarted pod and removed it when it stopped
    assert not os.path.exists(mountpoint)


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]
