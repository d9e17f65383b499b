"""Server-side apply and managedFields."""

import copy

import pytest

from tinykube.api import apply, fieldsets, kinds, schema
from tinykube.api.errors import ApiError

DEPLOY = kinds.resolve("deployments")


def _cfg(replicas: int | None = 3, image: str = "nginx:1", extra_env: bool = False) -> dict:
    container = {"name": "nginx", "image": image}
    if extra_env:
        container["env"] = [{"name": "A", "value": "1"}]
    spec = {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "d"}, "spec": spec}


def _managers(obj: dict) -> list[tuple[str, str]]:
    return [(m["manager"], m["operation"]) for m in obj["metadata"]["managedFields"]]


def test_fieldsv1_encoding_round_trip() -> None:
    root = schema.definition_for(DEPLOY)
    paths = fieldsets.field_set(root, _cfg(extra_env=True))
    encoded = fieldsets.encode(paths)
    containers = encoded["f:spec"]["f:template"]["f:spec"]["f:containers"]
    item = containers['k:{"name":"nginx"}']
    assert item["."] == {} and item["f:image"] == {} and "f:name" in item
    assert 'k:{"name":"A"}' in item["f:env"]
    assert "f:metadata" not in encoded or "f:name" not in encoded.get("f:metadata", {})
    assert fieldsets.decode(encoded) == paths


def test_create_by_apply_records_apply_entry() -> None:
    obj = apply.server_side_apply(DEPLOY, None, _cfg(), "kubectl")
    assert obj["spec"]["replicas"] == 3 and obj["metadata"]["name"] == "web"
    entry = obj["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
        "kubectl", "Apply", "apps/v1", "FieldsV1")
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]


def test_conflict_with_other_manager_and_force() -> None:
    live = copy.deepcopy(_cfg(replicas=2))
    apply.record_update(DEPLOY, None, live, "kubectl-client-side-apply")
    with pytest.raises(ApiError) as info:
        apply.server_side_apply(DEPLOY, live, _cfg(replicas=3), "kubectl")
    err = info.value
    assert (err.code, err.reason) == (409, "Conflict")
    assert err.message == ('Apply failed with 1 conflict: conflict with '
                           '"kubectl-client-side-apply" using apps/v1: .spec.replicas')
    assert err.causes == [{"reason": "FieldManagerConflict",
                           "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                           "field": ".spec.replicas"}]
    forced = apply.server_side_apply(DEPLOY, live, _cfg(replicas=3), "kubectl", force=True)
    assert forced["spec"]["replicas"] == 3
    assert _managers(forced) == [("kubectl-client-side-apply", "Update"), ("kubectl", "Apply")]
    csa = fieldsets.decode(forced["metadata"]["managedFields"][0]["fieldsV1"])
    assert (("f", "spec"), ("f", "replicas")) not in csa


def test_same_value_is_shared_not_conflicting() -> None:
    live = copy.deepcopy(_cfg(replicas=3))
    apply.record_update(DEPLOY, None, live, "other")
    out = apply.server_side_apply(DEPLOY, live, _cfg(replicas=3), "kubectl")
    assert out["spec"]["replicas"] == 3


def test_multiple_conflicts_message() -> None:
    live = copy.deepcopy(_cfg(replicas=2, image="nginx:0"))
    apply.record_update(DEPLOY, None, live, "editor")
    with pytest.raises(ApiError) as info:
        apply.server_side_apply(DEPLOY, live, _cfg(replicas=3), "kubectl")
    assert info.value.message.startswith('Apply failed with 2 conflicts: conflicts with '
                                         '"editor" using apps/v1:\n- ')
    assert '.spec.template.spec.containers[name="nginx"].image' in info.value.message


def test_dropping_a_field_removes_it_unless_someone_else_owns_it() -> None:
    first = apply.server_side_apply(DEPLOY, None, _cfg(extra_env=True), "kubectl")
    second = apply.server_side_apply(DEPLOY, first, _cfg(replicas=None), "kubectl")
    assert "replicas" not in second["spec"]
    assert "env" not in second["spec"]["template"]["spec"]["containers"][0]
    # Another applier shares replicas: dropping it from kubectl's config keeps it.
    shared = apply.server_side_apply(DEPLOY, first, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "d"}, "spec": {"replicas": 3}}, "hpa")
    kept = apply.server_side_apply(DEPLOY, shared, _cfg(replicas=None), "kubectl")
    assert kept["spec"]["replicas"] == 3


def test_list_items_merge_by_key() -> None:
    live = apply.server_side_apply(DEPLOY, None, _cfg(), "kubectl")
    sidecar = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "d"},
               "spec": {"template": {"spec": {"containers": [{"name": "sidecar",
                                                              "image": "busybox"}]}}}}
    out = apply.server_side_apply(DEPLOY, live, sidecar, "injector")
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert names == ["nginx", "sidecar"]


def test_record_update_takes_changed_fields() -> None:
    obj = apply.server_side_apply(DEPLOY, None, _cfg(), "kubectl")
    edited = copy.deepcopy(obj)
    edited["spec"]["replicas"] = 5
    apply.record_update(DEPLOY, obj, edited, "kubectl-edit")
    entries = {(m["manager"], m["operation"]): fieldsets.decode(m["fieldsV1"])
               for m in edited["metadata"]["managedFields"]}
    replicas = (("f", "spec"), ("f", "replicas"))
    assert replicas in entries[("kubectl-edit", "Update")]
    assert replicas not in entries[("kubectl", "Apply")]
    status_write = copy.deepcopy(edited)
    status_write["status"] = {"replicas": 5}
    apply.record_update(DEPLOY, edited, status_write, "kube-controller-manager",
                        subresource="status")
    status_entry = [m for m in status_write["metadata"]["managedFields"]
                    if m.get("subresource") == "status"]
    assert status_entry and "f:status" in status_entry[0]["fieldsV1"]


def test_apply_input_errors() -> None:
    with pytest.raises(ApiError) as info:
        apply.server_side_apply(DEPLOY, None, ["not", "an", "object"], "m")
    assert info.value.code == 400
    with pytest.raises(ApiError):
        apply.server_side_apply(DEPLOY, None, {"apiVersion": "v1", "kind": "Pod"}, "m")
    with pytest.raises(ApiError):
        apply.server_side_apply(DEPLOY, None, _cfg(), "")


def test_path_string() -> None:
    path = (("f", "spec"), ("f", "containers"), ("k", (("name", '"nginx"'),)), ("f", "image"))
    assert fieldsets.path_string(path) == '.spec.containers[name="nginx"].image'


def test_record_update_keeps_managed_fields_an_apply_already_wrote() -> None:
    live = apply.server_side_apply(DEPLOY, None, _cfg(replicas=2), "kubectl")
    applied = apply.server_side_apply(DEPLOY, live, _cfg(replicas=4), "kubectl")
    before = copy.deepcopy(applied["metadata"]["managedFields"])
    apply.record_update(DEPLOY, live, applied, "kubectl")
    assert applied["metadata"]["managedFields"] == before
    assert _managers(applied) == [("kubectl", "Apply")]


def test_repeated_apply_is_a_no_op() -> None:
    first = apply.server_side_apply(DEPLOY, None, _cfg(), "kubectl")
    first["metadata"]["managedFields"][0]["time"] = "2020-01-01T00:00:00Z"
    again = apply.server_side_apply(DEPLOY, first, _cfg(), "kubectl")
    assert again == first


def test_list_map_key_with_a_default_matches_the_defaulted_live_item() -> None:
    """A re-applied Service port without ``protocol`` is the live (defaulted) TCP port."""
    service = kinds.resolve("services")
    applied = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "web", "namespace": "d"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    live = apply.server_side_apply(service, None, copy.deepcopy(applied), "kubectl")
    live["spec"]["ports"][0]["protocol"] = "TCP"  # what defaulting does on create
    out = apply.server_side_apply(service, live, copy.deepcopy(applied), "kubectl")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
