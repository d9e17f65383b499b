"""`tinykube up` end to end: the tutorial's lab 1 with the real kubectl, down, and resume.

One cluster (free ports, its own TINYKUBE_HOME and HOME) is shared by the module's tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
NODE = "tinykube-control-plane"
CONTROL_PLANE = ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kube-proxy",
                 "coredns")

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl 1.32 binary not installed"),
]


class UpCluster:
    """A `tinykube up` cluster in a private home directory."""

    def __init__(self, home: Path):
        self.home = home
        self.env = {**os.environ, "HOME": str(home), "TINYKUBE_HOME": str(home / ".tinykube")}
        self.kubeconfig = home / ".tinykube" / "e2e" / "admin.conf"

    def tinykube(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tinykube", *args, "--name", "e2e"],
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def kubectl(self, *args: str, check: bool = True) -> str:
        # No --kubeconfig: `up` merged its context into ~/.kube/config and made it current.
        result = subprocess.run([KUBECTL, *args], env=self.env, capture_output=True,
                                text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def wait_for(self, predicate, what: str, timeout: float = 60.0):
        """Re-run a kubectl read until predicate(output) holds (kubectl has no server push
        for these reads)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}")

    def supervisor_pid(self) -> int | None:
        pid_file = self.home / ".tinykube" / "e2e" / "supervisor.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None


def cluster_processes(marker: str) -> list[str]:
    """Command lines of live processes that belong to the cluster directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.fixture(scope="module")
def up_cluster(tmp_path_factory):
    cluster = UpCluster(tmp_path_factory.mktemp("up-home"))
    result = cluster.tinykube("up", "--free-ports")
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield cluster
    finally:
        cluster.tinykube("down")
        leftovers = cluster_processes(str(cluster.home))
        for line in leftovers:
            os.kill(int(line.split(":", 1)[0]), 9)
        assert not leftovers, f"processes left after down: {leftovers}"


def test_up_prints_summary_and_writes_context(up_cluster):
    config = json.loads(up_cluster.kubectl("config", "view", "-o", "json"))
    assert config["current-context"] == "tinykube-e2e"
    assert up_cluster.kubeconfig.exists()


def test_control_plane_runs_as_static_pods(up_cluster):
    names = [f"{component}-{NODE}" for component in CONTROL_PLANE]
    up_cluster.wait_for(lambda: all(
        up_cluster.kubectl("get", "pod", "-n", "kube-system", name, check=False)
        for name in names), "mirror pods")
    up_cluster.kubectl("wait", "-n", "kube-system", "--for=condition=Ready", "--timeout=60s",
                       *(f"pod/{name}" for name in names))
    out = up_cluster.kubectl("get", "pods", "-n", "kube-system", "-o", "json")
    pods = {p["metadata"]["name"]: p for p in json.loads(out)["items"]}
    apiserver = pods[f"kube-apiserver-{NODE}"]
    assert apiserver["metadata"]["annotations"]["kubernetes.io/config.source"] == "file"
    table = up_cluster.kubectl("get", "pods", "-n", "kube-system")
    assert table.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def test_component_logs(up_cluster):
    out = up_cluster.wait_for(
        lambda: up_cluster.kubectl("logs", "-n", "kube-system", f"kube-scheduler-{NODE}",
                                   check=False).strip() or None,
        "scheduler log")
    assert "scheduler" in out.lower()


def test_componentstatuses_and_nodes(up_cluster):
    def healthy():
        out = up_cluster.kubectl("get", "componentstatuses", "-o", "json")
        items = {i["metadata"]["name"]: i for i in json.loads(out)["items"]}
        ok = all(c["status"] == "True" for i in items.values() for c in i["conditions"])
        return ok and set(items) == {"scheduler", "controller-manager", "etcd-0"}
    up_cluster.wait_for(healthy, "componentstatuses healthy")
    nodes = up_cluster.kubectl("get", "nodes")
    assert NODE in nodes and " Ready " in nodes
    info = up_cluster.kubectl("cluster-info")
    assert "Kubernetes control plane is running at http://127.0.0.1:" in info


def test_down_stops_everything_and_up_resumes(up_cluster):
    up_cluster.kubectl("create", "configmap", "survivor", "--from-literal=k=v")
    result = up_cluster.tinykube("down")
    assert result.returncode == 0, result.stderr
    assert up_cluster.supervisor_pid() is None
    assert cluster_processes(str(up_cluster.home)) == []
    result = up_cluster.tinykube("up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Resuming" in result.stderr
    out = up_cluster.kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}")
    assert out == "v"
    status = up_cluster.tinykube("status")
    assert status.returncode == 0, status.stdout + status.stderr
