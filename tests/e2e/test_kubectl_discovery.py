"""kubectl's discovery-driven commands: api-resources, api-versions, explain, raw paths."""

import pytest

pytestmark = pytest.mark.kubectl


async def test_api_resources_lists_kinds_with_short_names(kubectl):
    out = (await kubectl.run("api-resources")).stdout
    assert kubectl.header(out) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows = {r[0]: r for r in kubectl.table(out)[1:] if "metrics.k8s.io" not in r[-3]}  # its own pods, nodes
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["nodes"] == ["nodes", "no", "v1", "false", "Node"]
    assert rows["configmaps"] == ["configmaps", "cm", "v1", "true", "ConfigMap"]
    # subresources are not listed as resources
    assert "pods/log" not in rows


async def test_api_resources_filters_by_group_and_verbs(kubectl):
    out = (await kubectl.run("api-resources", "--api-group=apps", "-o", "name")).stdout
    assert set(out.split()) >= {"deployments.apps", "replicasets.apps", "daemonsets.apps",
                                "statefulsets.apps", "controllerrevisions.apps"}
    listable = (await kubectl.run("api-resources", "--verbs=list", "-o", "name")).stdout
    assert "selfsubjectaccessreviews.authorization.k8s.io" not in listable.split()
    assert "pods" in listable.split()


async def test_api_resources_wide_shows_verbs_and_categories(kubectl):
    out = (await kubectl.run("api-resources", "-o", "wide")).stdout
    assert kubectl.header(out) == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND",
                                   "VERBS", "CATEGORIES"]
    pods = next(r for r in kubectl.table(out) if r[0] == "pods")
    assert pods[5:] == ["create,delete,deletecollection,get,list,patch,update,watch", "all"]


async def test_raw_metrics_and_openapi(kubectl):
    await kubectl.run("get", "namespaces")
    metrics = (await kubectl.run("get", "--raw", "/metrics")).stdout
    assert 'apiserver_request_total{code="200"' in metrics
    assert 'resource="namespaces",scope="cluster",subresource="",verb="LIST"' in metrics
    index = (await kubectl.run("get", "--raw", "/openapi/v3")).stdout
    assert '"apis/apps/v1"' in index


async def test_api_versions(kubectl):
    versions = (await kubectl.run("api-versions")).stdout.split()
    assert {"v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1"} <= set(versions)


async def test_version_reports_v1_32(kubectl):
    out = await kubectl.json("version")
    assert out["serverVersion"]["gitVersion"] == "v1.32.0"
    assert out["serverVersion"]["minor"] == "32"


async def test_explain_pod_containers(kubectl):
    out = (await kubectl.run("explain", "pods.spec.containers")).stdout
    assert "KIND:" in out and "Pod" in out
    assert "containers" in out and "Container" in out
    assert "image" in out and "DESCRIPTION" in out


async def test_explain_recursive_deployment_spec(kubectl):
    out = (await kubectl.run("explain", "deployment.spec", "--recursive")).stdout
    assert "replicas" in out and "strategy" in out and "template" in out


async def test_raw_readyz_verbose(kubectl):
    out = (await kubectl.run("get", "--raw", "/readyz?verbose")).stdout
    lines = out.strip().splitlines()
    assert lines[0] == "[+]ping ok"
    assert "[+]etcd ok" in lines
    assert lines[-1] == "readyz check passed"
    assert (await kubectl.run("get", "--raw", "/livez")).stdout.strip() == "ok"
    assert (await kubectl.run("get", "--raw", "/readyz/etcd")).stdout.strip() == "ok"


async def test_auth_can_i(kubectl):
    assert (await kubectl.run("auth", "can-i", "create", "pods")).stdout.strip() == "yes"
    out = (await kubectl.run("auth", "can-i", "get", "/healthz")).stdout.strip()
    assert out == "yes"


async def test_auth_can_i_list(kubectl):
    out = (await kubectl.run("auth", "can-i", "--list")).stdout
    assert kubectl.header(out) == ["Resources", "Non-Resource", "URLs", "Resource", "Names",
                                   "Verbs"]
    assert ["*.*", "[]", "[]", "[*]"] in kubectl.table(out)


async def test_auth_whoami(kubectl):
    out = (await kubectl.run("auth", "whoami")).stdout
    assert kubectl.header(out) == ["ATTRIBUTE", "VALUE"]
    assert "Username" in out


async def test_componentstatuses(kubectl, apiserver):
    proc = await kubectl.run("get", "componentstatuses")
    out = proc.stdout
    assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in proc.stderr
    assert kubectl.header(out) == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    rows = {r[0]: r for r in kubectl.table(out)[1:] if "metrics.k8s.io" not in r[-3]}  # its own pods, nodes
    assert rows["etcd-0"][1] == "Healthy"
    assert set(rows) == {"scheduler", "controller-manager", "etcd-0"}
