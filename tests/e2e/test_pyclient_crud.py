"""The official ``kubernetes`` Python client against tinykube: CRUD, patches, watch, YAML.

The client is synchronous, so each call runs in a worker thread while the in-process API
server keeps serving on the test's event loop.
"""

import asyncio
from pathlib import Path

import pytest
from kubernetes import client as k8s
from kubernetes import config, utils, watch
from kubernetes.client.rest import ApiException

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "apiserver"


@pytest.fixture
def api(apiserver):
    api_client = config.new_client_from_config(config_file=str(apiserver.kubeconfig))
    yield api_client
    api_client.close()


def call(fn, *args, **kwargs):
    return asyncio.to_thread(fn, *args, **kwargs)


def _config_map(name: str, **data: str) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name, labels={"app": "demo"}),
                           data=data)


def _deployment(name: str, replicas: int = 1) -> k8s.V1Deployment:
    labels = {"app": name}
    container = k8s.V1Container(name="app", image="nginx:1.27",
                                ports=[k8s.V1ContainerPort(container_port=80)])
    template = k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels),
                                     spec=k8s.V1PodSpec(containers=[container]))
    spec = k8s.V1DeploymentSpec(replicas=replicas, template=template,
                                selector=k8s.V1LabelSelector(match_labels=labels))
    return k8s.V1Deployment(api_version="apps/v1", kind="Deployment",
                            metadata=k8s.V1ObjectMeta(name=name), spec=spec)


async def test_core_crud(api):
    core = k8s.CoreV1Api(api)
    ns = await call(core.create_namespace, k8s.V1Namespace(metadata=k8s.V1ObjectMeta(
        name="py")))
    assert ns.metadata.name == "py" and ns.status.phase == "Active"
    created = await call(core.create_namespaced_config_map, "py", _config_map("c", a="1"))
    assert created.metadata.uid and created.metadata.resource_version
    read = await call(core.read_namespaced_config_map, "c", "py")
    assert read.data == {"a": "1"}
    read.data["b"] = "2"
    replaced = await call(core.replace_namespaced_config_map, "c", "py", read)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    listed = await call(core.list_namespaced_config_map, "py", label_selector="app=demo")
    assert [i.metadata.name for i in listed.items] == ["c"]
    stale = read
    stale.data["c"] = "3"
    with pytest.raises(ApiException) as conflict:
        await call(core.replace_namespaced_config_map, "c", "py", stale)
    assert conflict.value.status == 409
    status = await call(core.delete_namespaced_config_map, "c", "py")
    # the client hands a delete's Status back undecoded
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "c"
    with pytest.raises(ApiException) as missing:
        await call(core.read_namespaced_config_map, "c", "py")
    assert missing.value.status == 404


async def test_apps_crud_and_scale(api):
    apps = k8s.AppsV1Api(api)
    created = await call(apps.create_namespaced_deployment, "default", _deployment("web", 2))
    assert created.spec.replicas == 2 and created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted by the server
    scale = await call(apps.read_namespaced_deployment_scale, "web", "default")
    assert scale.spec.replicas == 2 and scale.kind == "Scale"
    await call(apps.patch_namespaced_deployment_scale, "web", "default",
               {"spec": {"replicas": 4}})
    deploy = await call(apps.read_namespaced_deployment, "web", "default")
    assert deploy.spec.replicas == 4 and deploy.metadata.generation == 2
    listed = await call(apps.list_deployment_for_all_namespaces)
    assert [d.metadata.name for d in listed.items] == ["web"]
    await call(apps.delete_namespaced_deployment, "web", "default",
               propagation_policy="Background")
    with pytest.raises(ApiException) as missing:
        await call(apps.read_namespaced_deployment, "web", "default")
    assert missing.value.status == 404


async def test_patch_types(api):
    core = k8s.CoreV1Api(api)
    apps = k8s.AppsV1Api(api)
    await call(core.create_namespaced_config_map, "default", _config_map("p", a="1", b="2"))
    merged = await call(core.patch_namespaced_config_map, "p", "default",
                        {"data": {"b": None, "c": "3"}},
                        _content_type="application/merge-patch+json")
    assert merged.data == {"a": "1", "c": "3"}
    jsoned = await call(core.patch_namespaced_config_map, "p", "default",
                        [{"op": "replace", "path": "/data/a", "value": "9"}])
    assert jsoned.data["a"] == "9"
    await call(apps.create_namespaced_deployment, "default", _deployment("sm"))
    strategic = await call(apps.patch_namespaced_deployment, "sm", "default",
                           {"spec": {"template": {"spec": {"containers": [
                               {"name": "app", "image": "nginx:1.28"}]}}}},
                           _content_type="application/strategic-merge-patch+json")
    container = strategic.spec.template.spec.containers[0]
    assert container.image == "nginx:1.28" and container.ports[0].container_port == 80
    applied = await call(core.patch_namespaced_config_map, "p", "default",
                         {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "p"}, "data": {"owned": "yes"}},
                         field_manager="pytest", force=True,
                         _content_type="application/apply-patch+yaml")
    assert applied.data["owned"] == "yes"
    assert "pytest" in [m.manager for m in applied.metadata.managed_fields]


async def test_watch_from_a_lists_resource_version(api):
    core = k8s.CoreV1Api(api)
    listed = await call(core.list_namespaced_config_map, "default")
    since = listed.metadata.resource_version
    await call(core.create_namespaced_config_map, "default", _config_map("w", a="1"))
    await call(core.patch_namespaced_config_map, "w", "default", {"data": {"a": "2"}})
    await call(core.delete_namespaced_config_map, "w", "default")

    def collect() -> list[tuple[str, str, dict]]:
        seen = []
        stream = watch.Watch()
        for event in stream.stream(core.list_namespaced_config_map, "default",
                                   resource_version=since, timeout_seconds=10):
            obj = event["object"]
            seen.append((event["type"], obj.metadata.name, dict(obj.data or {})))
            if event["type"] == "DELETED":
                stream.stop()
        return seen

    events = await asyncio.wait_for(call(collect), 20)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "w"), ("MODIFIED", "w"),
                                              ("DELETED", "w")]
    assert events[1][2] == {"a": "2"}


async def test_create_from_yaml(api):
    created = await call(utils.create_from_yaml, api, str(EXAMPLES / "web-app.yaml"),
                         namespace="default")
    kinds = sorted(type(obj).__name__ for group in created for obj in group)
    assert kinds == ["V1ConfigMap", "V1Deployment", "V1Service"]
    svc = await call(k8s.CoreV1Api(api).read_namespaced_service, "web-service", "default")
    assert svc.spec.cluster_ip and svc.spec.ports[0].port == 80
    with pytest.raises(utils.FailToCreateError) as again:
        await call(utils.create_from_yaml, api, str(EXAMPLES / "web-app.yaml"),
                   namespace="default")
    assert all(e.status == 409 for e in again.value.api_exceptions)


async def test_discovery_and_version(api):
    version = await call(k8s.VersionApi(api).get_code)
    assert version.git_version == "v1.32.0"
    groups = await call(k8s.ApisApi(api).get_api_versions)
    assert "apps" in [g.name for g in groups.groups]
    resources = await call(k8s.CoreV1Api(api).get_api_resources)
    assert "pods/log" in [r.name for r in resources.resources]


async def test_dynamic_client_discovers_resources_and_subresources(api):
    from kubernetes import dynamic

    def run() -> tuple:
        dyn = dynamic.DynamicClient(api)
        deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
        configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
        configmaps.create(namespace="default", body={
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dyn"},
            "data": {"k": "v"}})
        names = [i.metadata.name for i in configmaps.get(namespace="default").items]
        return deployments, names

    deployments, names = await call(run)
    assert deployments.namespaced and deployments.name == "deployments"
    assert deployments.subresources["scale"].kind == "Scale"
    assert "dyn" in names
