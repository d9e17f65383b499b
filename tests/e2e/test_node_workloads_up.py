"""Pods really run and Services really route, on a `tinykube up` node, seen with kubectl.

A Deployment of a small HTTP server behind a Service: Running and Ready, `kubectl logs`
and `kubectl exec`, the ClusterIP spreading requests over the pods (kube-proxy's iptables
mode), a failing liveness probe restarting its container, a failing readiness probe taking
the pod out of the endpoints, a crashing container in CrashLoopBackOff, and a deleted pod
leaving no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tinykube.testing.upcluster import KUBECTL, UpCluster, cluster_processes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl 1.32 binary not installed"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("iptables-restore"),
                       reason="pod networking and iptables mode need root"),
]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    cluster = UpCluster(tmp_path_factory.mktemp("node-home"), name="node")
    result = cluster.tinykube("up", "--free-ports", "--proxy-mode", "iptables")
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield cluster
    finally:
        cluster.tinykube("down")
    assert cluster_processes(str(cluster.home)) == []


def _apply(cluster: UpCluster, manifest: dict) -> None:
    subprocess.run([KUBECTL, "apply", "-f", "-"], input=json.dumps(manifest), text=True,
                   env=cluster.env, check=True, capture_output=True, timeout=60)


def _pod(name: str, container: dict, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"test": name}},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]}}


def test_http_deployment_logs_exec_and_cluster_ip_spread(node):
    node.kubectl("apply", "-f", str(EXAMPLES / "tour" / "web.yaml"))
    node.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    pods = json.loads(node.kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    assert len(pods) == 2
    assert all(p["status"]["phase"] == "Running" for p in pods)
    name = pods[0]["metadata"]["name"]
    assert node.kubectl("exec", name, "--", "cat", "/etc/hostname").strip() == name
    assert "serving on 10.244." in node.kubectl("logs", name)
    cluster_ip = node.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")

    def answers() -> set[str]:
        seen = set()
        for _ in range(30):
            result = subprocess.run(["curl", "-s", "-m", "2", f"http://{cluster_ip}/"],
                                    capture_output=True, text=True, timeout=10)
            seen.add(result.stdout.strip())
        return seen
    seen = node.wait_for(lambda: s if len(s := answers()) == 2 else None,
                         "both pods answering on the ClusterIP")
    assert seen == {f"hello from {p['metadata']['name']}" for p in pods}


def test_pods_resolve_services_by_dns_and_reach_them_and_the_api(node):
    """Cluster DNS (10.96.0.10 in the pod's resolv.conf) and kube-proxy, from a pod."""
    node.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    pod = node.kubectl("get", "pod", "-l", "app=web", "-o", "jsonpath={.items[0].metadata.name}")
    cluster_ip = node.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    script = "\n".join([
        "import socket, urllib.request",
        "print(socket.gethostbyname('web.default.svc.cluster.local'))",
        "print(socket.gethostbyname('web'))",  # through the search path
        "print(urllib.request.urlopen('http://web/', timeout=5).read().decode().strip())",
        "print(urllib.request.urlopen('http://kubernetes.default.svc:443/version',"
        " timeout=5).read().decode())",
    ])
    out = node.kubectl("exec", pod, "--", "python3", "-c", script).splitlines()
    assert out[0] == cluster_ip and out[1] == cluster_ip
    assert out[2].startswith("hello from web-")
    assert '"gitVersion": "v1.32.0"' in "\n".join(out[3:])


def test_failing_liveness_probe_restarts_the_container(node):
    _apply(node, _pod("unlive", {
        "name": "main", "image": "busybox", "command": ["sleep", "600"],
        "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                          "failureThreshold": 1}}))
    node.wait_for(lambda: json.loads(node.kubectl("get", "pod", "unlive", "-o", "json"))[
        "status"].get("containerStatuses", [{}])[0].get("restartCount", 0) > 0,
        "a liveness restart")
    table = node.kubectl("get", "pod", "unlive").splitlines()[1].split()
    assert int(table[3]) > 0  # RESTARTS
    assert "Liveness probe failed" in node.kubectl("describe", "pod", "unlive")


def test_not_ready_pod_leaves_the_endpoints(node):
    marker = f"/tmp/ready-{uuid.uuid4().hex}"
    _apply(node, _pod("flaky", {
        "name": "main", "image": "busybox",
        "command": ["sh", "-c", f"touch {marker}; exec sleep 600"],
        "readinessProbe": {"exec": {"command": ["test", "-e", marker]}, "periodSeconds": 1}},
        labels={"app": "flaky"}))
    _apply(node, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "flaky"},
                  "spec": {"selector": {"app": "flaky"}, "ports": [{"port": 80}]}})
    node.kubectl("wait", "--for=condition=Ready", "pod/flaky", "--timeout=60s")
    node.wait_for(lambda: ":80" in node.kubectl("get", "endpoints", "flaky"), "endpoint")
    node.kubectl("exec", "flaky", "--", "rm", marker)
    node.kubectl("wait", "--for=condition=Ready=false", "pod/flaky", "--timeout=60s")
    node.wait_for(lambda: json.loads(node.kubectl("get", "endpoints", "flaky", "-o", "json"))
                  .get("subsets", [{}])[0].get("notReadyAddresses"), "a not-ready address")
    endpoints = json.loads(node.kubectl("get", "endpoints", "flaky", "-o", "json"))
    assert not endpoints["subsets"][0].get("addresses")


def test_crashing_container_reaches_crash_loop_back_off(node):
    _apply(node, _pod("crasher", {"name": "main", "image": "busybox",
                                  "command": ["sh", "-c", "echo bye; exit 3"]}))
    node.wait_for(lambda: "CrashLoopBackOff" in node.kubectl("get", "pod", "crasher"),
                  "CrashLoopBackOff")
    status = json.loads(node.kubectl("get", "pod", "crasher", "-o", "json"))["status"]
    last = status["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"


def test_deleting_a_pod_stops_its_processes(node):
    marker = f"tinykube-orphan-check-{uuid.uuid4().hex}"
    # The marker is an (ignored) argument, so the process can be found in /proc.
    _apply(node, _pod("doomed", {"name": "main", "image": "python",
                                 "command": ["python3", "-c", "import time; time.sleep(600)",
                                             marker]}))
    node.kubectl("wait", "--for=condition=Ready", "pod/doomed", "--timeout=60s")
    node.wait_for(lambda: cluster_processes(marker), "the pod's process")
    node.kubectl("delete", "pod", "doomed", "--wait=true", "--timeout=60s")
    assert cluster_processes(marker) == []
