"""The tutorial's audit lab (실습 4) with the real kubectl: pods in default are logged with
their bodies, configmaps are not."""

from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.kubectl


async def test_tutorial_audit_policy(apiserver_factory, kubectl_for, examples, tmp_path):
    log_path = tmp_path / "audit.log"
    running = await apiserver_factory(audit_policy_file=str(examples / "audit-policy.yaml"),
                                      audit_log_path=str(log_path), audit_log_maxage=30,
                                      audit_log_maxbackup=10, audit_log_maxsize=100)
    kubectl = kubectl_for(running)
    await kubectl.run("apply", "-f", str(examples / "pod.yaml"))
    await kubectl.run("create", "configmap", "not-audited", "--from-literal=a=b")
    await kubectl.run("get", "pods")
    await running.stop()  # flushes the log
    events = [orjson.loads(line) for line in Path(log_path).read_bytes().splitlines()]
    assert events and all(e["stage"] != "RequestReceived" for e in events)
    assert all(e["objectRef"]["resource"] in ("pods", "services") for e in events)
    create = next(e for e in events if e["verb"] == "create")
    assert create["objectRef"]["name"] == "nginx"
    assert create["objectRef"]["namespace"] == "default"
    assert create["requestObject"]["kind"] == "Pod"
    assert create["responseObject"]["metadata"]["uid"]
    assert create["userAgent"].startswith("kubectl")
    assert any(e["verb"] == "list" for e in events)
