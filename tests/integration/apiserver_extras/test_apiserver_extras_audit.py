"""The audit log of a real API server driven by the tutorial's policy."""

import asyncio
from pathlib import Path

import aiohttp
import orjson

POLICY = Path(__file__).resolve().parents[3] / "examples" / "apiserver" / "audit-policy.yaml"
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
       "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
              "data": {"a": "b"}}


def _events(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_tutorial_policy_logs_pod_create_with_bodies(apiserver_factory, tmp_path):
    log_path = tmp_path / "audit" / "audit.log"
    running = await apiserver_factory(audit_policy_file=str(POLICY),
                                      audit_log_path=str(log_path), audit_log_maxsize=1)
    base = f"{running.url}/api/v1/namespaces/default"
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/pods", json=POD) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(f"{base}/configmaps", json=CONFIG_MAP) as resp:
            assert resp.status == 201
        async with session.get(f"{base}/pods/missing") as resp:
            assert resp.status == 404
        async with session.get(f"{running.url}/api/v1/namespaces/kube-system/pods") as resp:
            assert resp.status == 200
    await running.stop()  # drains the writer
    events = _events(log_path)
    assert [e["stage"] for e in events] == ["ResponseComplete", "ResponseComplete"]
    create, missing = events
    assert create["verb"] == "create" and create["level"] == "RequestResponse"
    assert create["objectRef"] == {"resource": "pods", "namespace": "default", "name": "web",
                                   "apiVersion": "v1"}
    assert create["requestObject"]["spec"]["containers"][0]["image"] == "nginx"
    assert create["responseObject"]["metadata"]["uid"]
    assert create["responseStatus"]["code"] == 201
    assert create["requestURI"] == "/api/v1/namespaces/default/pods"
    assert create["sourceIPs"] == ["127.0.0.1"]
    assert create["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert missing["verb"] == "get" and missing["responseStatus"]["code"] == 404
    assert missing["responseStatus"]["reason"] == "NotFound"
    assert all(e["objectRef"]["resource"] != "configmaps" for e in events)


async def _audit_configmaps(apiserver_factory, tmp_path: Path):
    """An API server whose audit policy logs ConfigMap requests at Metadata level."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                      "- level: Metadata\n  resources:\n  - group: ''\n"
                      "    resources: [configmaps]\n")
    log_path = tmp_path / "audit.log"
    running = await apiserver_factory(audit_policy_file=str(policy), audit_log_path=str(log_path))
    return running, log_path


async def test_watch_logs_response_started_and_received(apiserver_factory, tmp_path):
    running, log_path = await _audit_configmaps(apiserver_factory, tmp_path)
    url = f"{running.url}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        await resp.read()
    await running.stop()
    stages = [(e["stage"], e["verb"]) for e in _events(log_path)]
    assert stages == [("RequestReceived", "watch"), ("ResponseStarted", "watch"),
                      ("ResponseComplete", "watch")]
    assert all("requestObject" not in e for e in _events(log_path))


async def test_watch_the_client_closes_completes_with_its_200(apiserver_factory, tmp_path):
    """A watch ends when its client goes away (kubectl get -w, Ctrl-C): the response was a
    200 and stays one in the audit log and in apiserver_request_total."""
    running, log_path = await _audit_configmaps(apiserver_factory, tmp_path)
    url = f"{running.url}/api/v1/namespaces/default/configmaps?watch=1"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200
        # the connection is closed: wait until the server has finished the watch
        for _ in range(200):
            if any(e["stage"] == "ResponseComplete" for e in _events(log_path)):
                break
            await asyncio.sleep(0.01)
        async with session.get(f"{running.url}/metrics") as resp:
            metrics = await resp.text()
    await running.stop()
    complete = [e for e in _events(log_path) if e["stage"] == "ResponseComplete"]
    assert [e["responseStatus"]["code"] for e in complete] == [200]
    watches = [line for line in metrics.splitlines()
               if line.startswith("apiserver_request_total") and 'verb="WATCH"' in line]
    assert len(watches) == 1 and 'code="200"' in watches[0], watches
