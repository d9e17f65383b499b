"""The api package's semantics as kubectl users see them: server-side apply conflicts,
strategic merge by merge key, 422 messages, wide tables and explain."""

import pytest

pytestmark = pytest.mark.kubectl

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
"""


async def test_server_side_apply_conflict_then_force(kubectl):
    await kubectl.run("create", "-f", "-", input=DEPLOY.format(replicas=2))
    failed = await kubectl.fails("apply", "--server-side", "-f", "-",
                                 input=DEPLOY.format(replicas=3))
    assert "Apply failed with 1 conflict: conflict with" in failed.stderr
    assert ".spec.replicas" in failed.stderr
    await kubectl.run("apply", "--server-side", "--force-conflicts", "-f", "-",
                      input=DEPLOY.format(replicas=3))
    deploy = await kubectl.json("get", "deployment", "web", "--show-managed-fields")
    assert deploy["spec"]["replicas"] == 3
    operations = {(m["manager"], m["operation"]) for m in deploy["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in operations


async def test_strategic_patch_merges_containers_by_name(kubectl):
    await kubectl.run("create", "-f", "-", input=DEPLOY.format(replicas=1))
    await kubectl.run("patch", "deployment", "web", "-p",
                      '{"spec":{"template":{"spec":{"containers":'
                      '[{"name":"sidecar","image":"busybox"}]}}}}')
    deploy = await kubectl.json("get", "deployment", "web")
    names = [c["name"] for c in deploy["spec"]["template"]["spec"]["containers"]]
    assert names == ["nginx", "sidecar"]
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%",
                                                           "maxUnavailable": "25%"}


async def test_invalid_pod_lists_every_cause(kubectl):
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  restartPolicy: Sometimes\n"
           "  containers:\n  - name: c\n")
    failed = await kubectl.fails("create", "-f", "-", input=pod)
    assert 'The Pod "bad" is invalid:' in failed.stderr
    assert "spec.containers[0].image: Required value" in failed.stderr
    assert 'spec.restartPolicy: Unsupported value: "Sometimes"' in failed.stderr


async def test_wide_pod_columns(kubectl):
    await kubectl.run("run", "p", "--image=nginx:1.25")
    out = (await kubectl.run("get", "pods", "-o", "wide")).stdout
    assert kubectl.header(out) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                   "NOMINATED", "NODE", "READINESS", "GATES"]
    row = kubectl.table(out)[1]
    assert row[:4] == ["p", "0/1", "Pending", "0"]


async def test_explain_shows_types(kubectl):
    out = (await kubectl.run("explain", "pods.spec.containers.resources.limits")).stdout
    assert "FIELD: limits <map[string]Quantity>" in out
    surge = (await kubectl.run("explain", "deployment.spec.strategy.rollingUpdate.maxSurge")).stdout
    assert "<IntOrString>" in surge
