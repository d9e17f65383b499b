"""The real kubectl drives Deployments through tinykube's controllers.

`rollout status`, `set image`, `rollout history`, `rollout undo`, `rollout restart`,
`scale` and `get` against the API server fixture with the controller manager running and
a stand-in kubelet reporting pods Ready.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tinykube.controllers.testutil import PodReadier, RunningControllers

pytestmark = pytest.mark.kubectl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "controllers"
CONTROLLERS = ["replicaset", "deployment", "garbagecollector", "serviceaccount"]


@pytest.fixture
def newest(kubectl):
    """The narrower checks run once, with the newest kubectl (the main one runs with all).

    Requested before ``cluster`` so a skipped run starts nothing.
    """
    if kubectl.version != "1.33":
        pytest.skip("covered with kubectl 1.33")
    return kubectl


@pytest.fixture
async def cluster(apiserver):
    client = apiserver.client(insecure=True)
    async with RunningControllers(client, CONTROLLERS), PodReadier(client):
        yield client
    await client.close()


async def test_rollout_status_history_undo_and_scale(kubectl, cluster):
    out = await kubectl.run("apply", "-f", str(EXAMPLES / "web-deployment.yaml"))
    assert out.stdout.strip() == "deployment.apps/web created"
    status = await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in status.stdout

    await kubectl.run("set", "image", "deployment/web", "nginx=nginx:1.26")
    status = await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    assert 'deployment "web" successfully rolled out' in status.stdout

    history = await kubectl.run("rollout", "history", "deployment/web")
    rows = [line.split()[0] for line in history.stdout.strip().splitlines()[2:]]
    assert rows == ["1", "2"]
    detail = await kubectl.run("rollout", "history", "deployment/web", "--revision=1")
    assert "nginx:1.25" in detail.stdout

    undo = await kubectl.run("rollout", "undo", "deployment/web")
    assert undo.stdout.strip() == "deployment.apps/web rolled back"
    await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    deploy = await kubectl.json("get", "deployment", "web")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    history = await kubectl.run("rollout", "history", "deployment/web")
    assert [line.split()[0] for line in history.stdout.strip().splitlines()[2:]] == ["2", "3"]

    await kubectl.run("scale", "deployment/web", "--replicas=5")
    await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    deploy = await kubectl.json("get", "deployment", "web")
    assert deploy["status"]["readyReplicas"] == 5
    assert deploy["status"]["availableReplicas"] == 5
    rs_rows = kubectl.table((await kubectl.run("get", "rs")).stdout)
    assert rs_rows[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    sizes = sorted(row[1] for row in rs_rows[1:])
    assert sizes == ["0", "5"]


async def test_rollout_restart_rolls_new_pods(newest, cluster):
    kubectl = newest
    await kubectl.run("apply", "-f", str(EXAMPLES / "web-deployment.yaml"))
    await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    before = {p["metadata"]["name"] for p in (await kubectl.json("get", "pods"))["items"]}
    await kubectl.run("rollout", "restart", "deployment/web")
    await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    deploy = await kubectl.json("get", "deployment", "web")
    annotations = deploy["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    pods = (await kubectl.json("get", "pods"))["items"]
    alive = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
    assert len(alive) == 3 and not alive & before


async def test_pause_and_resume(newest, cluster):
    kubectl = newest
    await kubectl.run("apply", "-f", str(EXAMPLES / "web-deployment.yaml"))
    await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    await kubectl.run("rollout", "pause", "deployment/web")
    await kubectl.run("set", "image", "deployment/web", "nginx=nginx:1.27")
    rs = (await kubectl.json("get", "rs"))["items"]
    assert len(rs) == 1
    await kubectl.run("rollout", "resume", "deployment/web")
    await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    rs = (await kubectl.json("get", "rs"))["items"]
    assert len(rs) == 2


async def test_deleting_deployment_with_kubectl_cascades(newest, cluster):
    kubectl = newest
    await kubectl.run("apply", "-f", str(EXAMPLES / "web-deployment.yaml"))
    await kubectl.run("rollout", "status", "deployment/web", "--timeout=30s")
    await kubectl.run("delete", "deployment", "web", "--timeout=30s")
    await kubectl.run("wait", "--for=delete", "rs", "-l", "app=web", "--timeout=30s")
    pods = (await kubectl.json("get", "pods", "-l", "app=web"))["items"]
    assert [p for p in pods if not p["metadata"].get("deletionTimestamp")] == []


async def test_tutorial_replicaset_reconciles_a_deleted_pod(newest, cluster):
    kubectl = newest
    out = await kubectl.run("apply", "-f", str(EXAMPLES / "web-rs.yaml"))
    assert out.stdout.strip() == "replicaset.apps/web-rs created"
    await kubectl.run("wait", "--for=jsonpath={.status.readyReplicas}=3", "rs/web-rs",
                      "--timeout=30s")
    rows = kubectl.table((await kubectl.run("get", "rs", "web-rs")).stdout)
    assert rows[1][:4] == ["web-rs", "3", "3", "3"]
    pods = (await kubectl.json("get", "pods", "-l", "app=web"))["items"]
    victim = pods[0]["metadata"]["name"]
    await kubectl.run("delete", "pod", victim, "--wait=true", "--timeout=30s")
    await kubectl.run("wait", "--for=jsonpath={.status.readyReplicas}=3", "rs/web-rs",
                      "--timeout=30s")
    names = {p["metadata"]["name"] for p in (await kubectl.json(
        "get", "pods", "-l", "app=web"))["items"]}
    assert len(names) == 3 and victim not in names
    events = await kubectl.run("get", "events", "--field-selector",
                               "involvedObject.name=web-rs", "-o",
                               "jsonpath={.items[*].reason}")
    assert "SuccessfulCreate" in events.stdout.split()


async def test_statefulset_rollout_status_and_history(newest, cluster):
    kubectl = newest
    async with RunningControllers(cluster, ["statefulset"]):
        await kubectl.run("apply", "-f", str(EXAMPLES / "web-statefulset.yaml"))
        status = await kubectl.run("rollout", "status", "statefulset/web", "--timeout=30s")
        assert "partitioned roll out complete" in status.stdout or \
            "roll out complete" in status.stdout
        names = sorted(p["metadata"]["name"] for p in (await kubectl.json(
            "get", "pods", "-l", "app=nginx"))["items"])
        assert names == ["web-0", "web-1", "web-2"]
        claims = sorted(c["metadata"]["name"] for c in (await kubectl.json("get", "pvc"))["items"])
        assert claims == ["www-web-0", "www-web-1", "www-web-2"]
        await kubectl.run("set", "image", "statefulset/web", "nginx=nginx:1.26")
        await kubectl.run("rollout", "status", "statefulset/web", "--timeout=30s")
        history = await kubectl.run("rollout", "history", "statefulset/web")
        assert [line.split()[0] for line in history.stdout.strip().splitlines()[2:]] == [
            "1", "2"]


async def test_daemonset_rollout_status(newest, cluster):
    kubectl = newest
    for name in ("node-a", "node-b"):
        await cluster.resource("nodes").create({"apiVersion": "v1", "kind": "Node",
                                                "metadata": {"name": name}})
    async with RunningControllers(cluster, ["daemonset"]):
        await kubectl.run("apply", "-f", str(EXAMPLES / "agent-daemonset.yaml"))
        status = await kubectl.run("rollout", "status", "daemonset/agent", "--timeout=30s")
        assert 'daemon set "agent" successfully rolled out' in status.stdout
        ds = await kubectl.json("get", "daemonset", "agent")
        assert ds["status"]["desiredNumberScheduled"] == 2
        assert ds["status"]["numberReady"] == 2
