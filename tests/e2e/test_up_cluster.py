"""`tinykube up` end to end: the tutorial's lab 1 with the real kubectl, down, and resume.

One cluster (free ports, its own TINYKUBE_HOME and HOME) is shared by the module's tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tinykube.testing.upcluster import KUBECTL, NODE, UpCluster, cluster_processes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CONTROL_PLANE = ("kube-apiserver", "kube-scheduler", "kube-controller-manager", "kube-proxy",
                 "coredns")

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl 1.32 binary not installed"),
]


@pytest.fixture(scope="module")
def up_cluster(tmp_path_factory):
    cluster = UpCluster(tmp_path_factory.mktemp("up-home"))
    result = cluster.tinykube("up", "--free-ports", "--hollow-nodes", "3",
                              "--node-monitor-grace-period", "6")
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


def test_component_ports_serve_healthz_and_metrics(up_cluster):
    ports = json.loads((up_cluster.home / ".tinykube" / "e2e" / "cluster.json").read_text())[
        "ports"]
    import ssl

    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE

    def get(url: str) -> str:
        with urllib.request.urlopen(url, timeout=10, context=insecure) as resp:
            assert resp.status == 200, url
            return resp.read().decode()

    def either(port: int, path: str) -> str:
        try:
            return get(f"https://127.0.0.1:{port}{path}")
        except (OSError, ssl.SSLError):
            return get(f"http://127.0.0.1:{port}{path}")

    assert get(f"http://127.0.0.1:{ports['kubelet_healthz']}/healthz") == "ok"
    assert "kubelet_running_pods" in either(ports["kubelet"], "/metrics")
    assert "kubeproxy_sync_proxy_rules_duration_seconds" in get(
        f"http://127.0.0.1:{ports['proxy_metrics']}/metrics")
    assert "lastUpdated" in get(f"http://127.0.0.1:{ports['proxy_healthz']}/healthz")
    for name in ("scheduler", "controller_manager"):
        assert either(ports[name], "/healthz") == "ok"
        assert "# TYPE" in either(ports[name], "/metrics")
    assert "apiserver_request_total" in get(f"http://127.0.0.1:{ports['apiserver']}/metrics")


def test_tutorial_kube_proxy_monitoring_lab(up_cluster):
    """Lab 3: the proxy mode from its ConfigMap, then its metrics through kubectl port-forward
    (to a host-network pod: the kubelet connects on the host's loopback)."""
    config = up_cluster.kubectl("get", "configmap", "-n", "kube-system", "kube-proxy", "-o", "yaml")
    iptables = os.geteuid() == 0 and shutil.which("iptables-restore")  # as `tinykube up` chooses
    assert ("mode: iptables" if iptables else "mode: userspace") in config
    metrics_port = json.loads((up_cluster.home / ".tinykube" / "e2e" / "cluster.json").read_text())[
        "ports"]["proxy_metrics"]
    forward = subprocess.Popen([KUBECTL, "port-forward", "-n", "kube-system", f"pods/kube-proxy-{NODE}",
                                f":{metrics_port}"], env=up_cluster.env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:<local> -> <port>"
        assert line.startswith("Forwarding from 127.0.0.1:"), line + forward.stderr.read()
        local = int(line.split()[2].rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/metrics", timeout=10) as resp:
            assert "kubeproxy_sync_proxy_rules_duration_seconds_count" in resp.read().decode()
    finally:
        forward.kill()
        forward.wait(timeout=10)
        forward.stdout.close()
        forward.stderr.close()


def test_tutorial_replicaset_recreates_a_deleted_pod(up_cluster):
    up_cluster.kubectl("apply", "-f", str(EXAMPLES / "controllers" / "web-rs.yaml"))

    def pod_names():
        out = up_cluster.kubectl("get", "pods", "-l", "app=web", "-o", "json")
        live = [p for p in json.loads(out)["items"]
                if not p["metadata"].get("deletionTimestamp")]
        return sorted(p["metadata"]["name"] for p in live) if len(live) == 3 else None

    before = up_cluster.wait_for(pod_names, "3 web-rs pods")
    up_cluster.kubectl("delete", "pod", before[0], "--wait=false")
    after = up_cluster.wait_for(
        lambda: (names := pod_names()) and before[0] not in names and names, "a replacement")
    assert len(set(after) - set(before)) == 1


def test_tutorial_service_endpoints_and_troubleshooting(up_cluster):
    up_cluster.kubectl("apply", "-f", str(EXAMPLES / "controllers" / "web-service.yaml"))
    up_cluster.wait_for(
        lambda: ":8080" in up_cluster.kubectl("get", "endpoints", "web-service", check=False),
        "web-service endpoints on the pods' port 8080")
    # Troubleshooting: a Service whose selector matches nothing has no endpoints.
    up_cluster.kubectl("create", "service", "clusterip", "lonely", "--tcp=80:80")
    up_cluster.wait_for(
        lambda: up_cluster.kubectl("get", "endpoints", "lonely", check=False), "lonely ep")
    endpoints = up_cluster.kubectl("get", "endpoints", "lonely", "-o", "json")
    assert not json.loads(endpoints).get("subsets")
    assert "<none>" in up_cluster.kubectl("get", "endpoints", "lonely")


def test_tutorial_gpu_pod_pending_then_scheduled(up_cluster):
    up_cluster.kubectl("apply", "-f", str(EXAMPLES / "scheduler" / "gpu-pod.yaml"))
    describe = up_cluster.wait_for(
        lambda: (out := up_cluster.kubectl("describe", "pod", "gpu-pod"))
        and "FailedScheduling" in out and out, "FailedScheduling event")
    assert "0/4 nodes are available" in describe
    assert "Insufficient nvidia.com/gpu" in describe or "node affinity/selector" in describe
    assert json.loads(up_cluster.kubectl("get", "pod", "gpu-pod", "-o", "json"))[
        "status"]["phase"] == "Pending"
    node = "hollow-node-1"
    up_cluster.kubectl("label", "node", node, "gpu=true", "disktype=ssd",
                       "kubernetes.io/e2e-az-name=az1")
    up_cluster.kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p",
                       json.dumps({"status": {"capacity": {"nvidia.com/gpu": "2"},
                                              "allocatable": {"nvidia.com/gpu": "2"}}}))
    up_cluster.kubectl("wait", "--for=condition=PodScheduled", "pod/gpu-pod", "--timeout=60s")
    assert up_cluster.kubectl("get", "pod", "gpu-pod", "-o",
                              "jsonpath={.spec.nodeName}") == node


def test_tutorial_leader_election_leases(up_cluster):
    up_cluster.kubectl("apply", "-f", str(EXAMPLES / "scheduler" / "kube-scheduler-config.yaml"))
    for name in ("kube-scheduler", "kube-controller-manager"):
        holder = up_cluster.wait_for(lambda: up_cluster.kubectl(
            "get", "lease", "-n", "kube-system", name, "-o",
            "jsonpath={.spec.holderIdentity}", check=False), f"{name} lease holder")
        assert holder
        duration = up_cluster.kubectl("get", "lease", "-n", "kube-system", name, "-o",
                                      "jsonpath={.spec.leaseDurationSeconds}")
        assert duration == "15"


def test_describe_node_and_stopped_node_turns_not_ready(up_cluster):
    describe = up_cluster.kubectl("describe", "node", NODE)
    for field in ("Conditions:", "Capacity:", "Allocatable:", "KubeletReady"):
        assert field in describe
    hollow = [line.split(":", 1)[0] for line in cluster_processes("hollow-nodes")
              if str(up_cluster.home) in line]
    assert hollow, "the hollow-nodes agent is not running"
    pid = int(hollow[0])
    os.kill(pid, signal.SIGSTOP)  # its nodes stop heartbeating; the supervisor sees no exit
    try:
        up_cluster.kubectl("wait", "--for=condition=Ready=Unknown", "node/hollow-node-0",
                           "--timeout=60s")
        assert "NotReady" in up_cluster.kubectl("get", "node", "hollow-node-0")
    finally:
        os.kill(pid, signal.SIGCONT)
    up_cluster.kubectl("wait", "--for=condition=Ready", "node/hollow-node-0", "--timeout=60s")


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


@pytest.mark.etcd
@pytest.mark.skipif(not os.path.exists("/usr/bin/etcd"), reason="etcd-server not installed")
def test_up_with_etcd_store(tmp_path):
    """`--store etcd`: etcd runs as a static pod and holds the objects under /registry/."""
    cluster = UpCluster(tmp_path)
    result = cluster.tinykube("up", "--free-ports", "--store", "etcd")
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        cluster.kubectl("wait", "-n", "kube-system", "--for=condition=Ready", "--timeout=60s",
                        f"pod/etcd-{NODE}")
        cluster.kubectl("create", "configmap", "in-etcd", "--from-literal=k=v")
        port = json.loads((tmp_path / ".tinykube" / "e2e" / "cluster.json").read_text())[
            "ports"]["etcd_client"]
        etcdctl = ["etcdctl", f"--endpoints=http://127.0.0.1:{port}"]
        env = {**os.environ, "ETCDCTL_API": "3"}
        health = subprocess.run([*etcdctl, "endpoint", "health"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert "is healthy" in health.stdout + health.stderr
        value = subprocess.run([*etcdctl, "get", "/registry/configmaps/default/in-etcd",
                                "--print-value-only"], env=env, capture_output=True,
                               text=True, timeout=30).stdout
        assert json.loads(value)["data"] == {"k": "v"}
    finally:
        cluster.tinykube("down")
    assert cluster_processes(str(tmp_path)) == []
