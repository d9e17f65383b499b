"""CRUD over real HTTP: core and apps kinds, generation, resourceVersion, conflicts."""

from __future__ import annotations

import pytest

CM_PATH = "/api/v1/namespaces/default/configmaps"
DEPLOY_PATH = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name: str, replicas: int = 1, image: str = "nginx") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def test_configmap_create_get_update_delete(apiserver):
    status, created = await apiserver.request("POST", CM_PATH, {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
        "data": {"a": "1"}})
    assert status == 201
    md = created["metadata"]
    assert md["namespace"] == "default" and md["uid"] and md["creationTimestamp"]
    assert int(md["resourceVersion"]) > 0
    assert created["kind"] == "ConfigMap" and created["apiVersion"] == "v1"

    status, got = await apiserver.request("GET", f"{CM_PATH}/cfg")
    assert status == 200 and got == created

    got["data"]["a"] = "2"
    status, updated = await apiserver.request("PUT", f"{CM_PATH}/cfg", got)
    assert status == 200
    assert int(updated["metadata"]["resourceVersion"]) > int(md["resourceVersion"])
    assert updated["metadata"]["uid"] == md["uid"]

    status, body = await apiserver.request("DELETE", f"{CM_PATH}/cfg")
    assert status == 200 and body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"]["name"] == "cfg" and body["details"]["uid"] == md["uid"]
    status, body = await apiserver.request("GET", f"{CM_PATH}/cfg")
    assert status == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "cfg" not found'


async def test_stale_resource_version_is_409_with_upstream_message(apiserver):
    _, created = await apiserver.request("POST", CM_PATH, {"metadata": {"name": "c"}})
    first = dict(created, data={"x": "1"})
    status, _ = await apiserver.request("PUT", f"{CM_PATH}/c", first)
    assert status == 200
    stale = dict(created, data={"x": "2"})  # still the original resourceVersion
    status, body = await apiserver.request("PUT", f"{CM_PATH}/c", stale)
    assert status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on configmaps "c": the object '
                               'has been modified; please apply your changes to the latest '
                               'version and try again')


async def test_update_without_resource_version_is_unconditional(apiserver):
    await apiserver.request("POST", CM_PATH, {"metadata": {"name": "u"}})
    status, body = await apiserver.request("PUT", f"{CM_PATH}/u", {
        "metadata": {"name": "u"}, "data": {"k": "v"}})
    assert status == 200 and body["data"] == {"k": "v"}


async def test_noop_update_keeps_resource_version(apiserver):
    _, created = await apiserver.request("POST", CM_PATH, {"metadata": {"name": "n"},
                                                          "data": {"a": "b"}})
    status, same = await apiserver.request("PUT", f"{CM_PATH}/n", created)
    assert status == 200
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


async def test_deployment_generation_tracks_spec_not_metadata_or_status(apiserver):
    status, created = await apiserver.request("POST", DEPLOY_PATH, deployment("web"))
    assert status == 201
    assert created["metadata"]["generation"] == 1
    assert "status" not in created or not created["status"].get("replicas")
    # defaulting happened
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"

    status, patched = await apiserver.request(
        "PATCH", f"{DEPLOY_PATH}/web", {"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json")
    assert status == 200 and patched["metadata"]["generation"] == 1

    status, patched = await apiserver.request(
        "PATCH", f"{DEPLOY_PATH}/web", {"spec": {"replicas": 3}},
        content_type="application/strategic-merge-patch+json")
    assert status == 200 and patched["metadata"]["generation"] == 2

    status, with_status = await apiserver.request(
        "PATCH", f"{DEPLOY_PATH}/web/status", {"status": {"replicas": 3, "observedGeneration": 2}},
        content_type="application/merge-patch+json")
    assert status == 200
    assert with_status["status"]["replicas"] == 3
    assert with_status["metadata"]["generation"] == 2


async def test_status_subresource_separation(apiserver):
    _, created = await apiserver.request("POST", DEPLOY_PATH, deployment("sep"))
    # the main resource ignores status
    body = dict(created, status={"replicas": 7})
    _, updated = await apiserver.request("PUT", f"{DEPLOY_PATH}/sep", body)
    assert (updated.get("status") or {}).get("replicas") is None
    # /status ignores spec
    body = dict(updated, status={"replicas": 5})
    body["spec"] = dict(body["spec"], replicas=9)
    status, via_status = await apiserver.request("PUT", f"{DEPLOY_PATH}/sep/status", body)
    assert status == 200
    assert via_status["status"]["replicas"] == 5
    assert via_status["spec"]["replicas"] == 1


async def test_scale_subresource(apiserver):
    await apiserver.request("POST", DEPLOY_PATH, deployment("sc", replicas=2))
    status, scale = await apiserver.request("GET", f"{DEPLOY_PATH}/sc/scale")
    assert status == 200
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=sc"
    status, scale = await apiserver.request("PATCH", f"{DEPLOY_PATH}/sc/scale",
                                            {"spec": {"replicas": 4}},
                                            content_type="application/merge-patch+json")
    assert status == 200 and scale["spec"]["replicas"] == 4
    _, dep = await apiserver.request("GET", f"{DEPLOY_PATH}/sc")
    assert dep["spec"]["replicas"] == 4 and dep["metadata"]["generation"] == 2


async def test_generate_name(apiserver):
    names = set()
    for _ in range(5):
        status, obj = await apiserver.request("POST", CM_PATH,
                                              {"metadata": {"generateName": "job-"}})
        assert status == 201
        name = obj["metadata"]["name"]
        assert name.startswith("job-") and len(name) == len("job-") + 5
        names.add(name)
    assert len(names) == 5


async def test_dry_run_does_not_persist(apiserver):
    status, obj = await apiserver.request("POST", CM_PATH + "?dryRun=All",
                                          {"metadata": {"name": "dry"}})
    assert status == 201 and obj["metadata"]["name"] == "dry"
    status, _ = await apiserver.request("GET", f"{CM_PATH}/dry")
    assert status == 404


async def test_json_patch_and_yaml_body(apiserver):
    yaml_body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: '1'\n"
    status, obj = await apiserver.request("POST", CM_PATH, yaml_body,
                                          content_type="application/yaml")
    assert status == 201 and obj["data"] == {"a": "1"}
    status, obj = await apiserver.request(
        "PATCH", f"{CM_PATH}/y", [{"op": "add", "path": "/data/b", "value": "2"}],
        content_type="application/json-patch+json")
    assert status == 200 and obj["data"] == {"a": "1", "b": "2"}
    status, text = await apiserver.request("GET", f"{CM_PATH}/y",
                                           headers={"Accept": "application/yaml"})
    assert status == 200 and "name: y" in text


async def test_cluster_scoped_and_all_namespaces(apiserver):
    status, ns = await apiserver.request("POST", "/api/v1/namespaces",
                                         {"metadata": {"name": "team-a"}})
    assert status == 201
    assert ns["status"]["phase"] == "Active" and ns["spec"]["finalizers"] == ["kubernetes"]
    await apiserver.request("POST", "/api/v1/namespaces/team-a/configmaps",
                            {"metadata": {"name": "one"}})
    status, lst = await apiserver.request("GET", "/api/v1/configmaps")
    assert status == 200 and lst["kind"] == "ConfigMapList"
    assert ("team-a", "one") in {(i["metadata"]["namespace"], i["metadata"]["name"])
                                 for i in lst["items"]}


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/services",
                                  "/apis/apps/v1/namespaces/default/replicasets"])
async def test_list_has_resource_version(apiserver, path):
    status, lst = await apiserver.request("GET", path)
    assert status == 200 and int(lst["metadata"]["resourceVersion"]) > 0
