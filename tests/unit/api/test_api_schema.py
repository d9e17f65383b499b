"""Upstream schemas and the served OpenAPI documents."""

from tinykube.api import kinds, schema


def test_every_kind_has_a_definition() -> None:
    """All but metrics.k8s.io's, which upstream's core document lacks too (metrics-server,
    an aggregated API, brings them)."""
    missing = [r.kind for r in kinds.RESOURCES if schema.definition_for(r) is None]
    assert missing == ["NodeMetrics", "PodMetrics"]


def test_patch_metadata_from_schema() -> None:
    pods = kinds.resolve("pods")
    assert schema.patch_meta(schema.field_schema(pods, "spec.containers")) == ("merge", "name")
    assert schema.patch_meta(schema.field_schema(pods, "spec.containers.volumeMounts")) == (
        "merge", "mountPath")
    assert schema.patch_meta(schema.field_schema(pods, "status.conditions")) == ("merge", "type")
    assert schema.list_meta(schema.field_schema(pods, "spec.containers.ports")) == (
        "map", ("containerPort", "protocol"))
    assert schema.field_schema(pods, "spec.nope") is None


def test_openapi_v3_index_and_documents() -> None:
    index = schema.openapi_v3_paths()["paths"]
    assert "api/v1" in index and "apis/apps/v1" in index
    assert index["apis/apps/v1"]["serverRelativeURL"].startswith("/openapi/v3/apis/apps/v1?hash=")
    doc = schema.openapi_v3("apis/apps/v1")
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["type"] == "object"
    spec = deployment["properties"]["spec"]
    assert spec["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert "io.k8s.api.core.v1.PodSpec" in schemas
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string.get("x-kubernetes-int-or-string") is True
    assert "enum" not in deployment["properties"]["kind"]
    assert schema.openapi_v3_hash("apps/v1") == schema.openapi_v3_hash("apis/apps/v1")


def test_openapi_v2_document() -> None:
    doc = schema.openapi_v2()
    assert doc["swagger"] == "2.0"
    pod = doc["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    assert pod["x-kubernetes-group-version-kind"][0]["kind"] == "Pod"
