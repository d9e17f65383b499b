"""JSON patch, merge patch and strategic merge patch."""

import copy

import pytest

from tinykube.api import kinds, patch
from tinykube.api.errors import ApiError

DEPLOY = kinds.resolve("deployments")
POD = kinds.resolve("pods")


def _deploy() -> dict:
    return {"metadata": {"name": "d", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"replicas": 1, "template": {"spec": {
                "containers": [
                    {"name": "a", "image": "i1", "ports": [{"containerPort": 80}],
                     "env": [{"name": "E", "value": "1"}], "args": ["x", "y"]},
                    {"name": "b", "image": "i2"}],
                "tolerations": [{"key": "k"}],
                "volumes": [{"name": "v", "emptyDir": {}}]}}}}


def test_json_patch_ops() -> None:
    obj = _deploy()
    out = patch.json_patch(obj, [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "z"},
        {"op": "add", "path": "/metadata/finalizers/0", "value": "first"},
        {"op": "remove", "path": "/metadata/labels/a"},
        {"op": "copy", "from": "/spec/replicas", "path": "/spec/copied"},
        {"op": "move", "from": "/spec/copied", "path": "/spec/moved"},
        {"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "1"}},
        {"op": "replace", "path": "/metadata/annotations/a~0b~1c", "value": "2"},
    ])
    assert out["spec"]["replicas"] == 5 and out["spec"]["moved"] == 5
    assert "copied" not in out["spec"]
    assert out["metadata"]["finalizers"] == ["first", "x", "z"]
    assert out["metadata"]["labels"] == {}
    assert out["metadata"]["annotations"] == {"a~b/c": "2"}
    assert obj == _deploy(), "input must not change"


@pytest.mark.parametrize("ops,code", [
    ([{"op": "test", "path": "/spec/replicas", "value": 2}], 422),
    ([{"op": "remove", "path": "/spec/nope"}], 422),
    ([{"op": "replace", "path": "/spec/nope", "value": 1}], 422),
    ([{"op": "add", "path": "/nope/deeper", "value": 1}], 422),
    ([{"op": "add", "path": "/metadata/finalizers/9", "value": 1}], 422),
    ([{"op": "bogus", "path": "/a"}], 422),
    ([{"op": "add", "path": "/a"}], 422),
    ({"op": "add"}, 400),
    (["not-an-op"], 400),
    ([{"op": "add", "path": "no-slash", "value": 1}], 422),
])
def test_json_patch_errors(ops, code: int) -> None:
    with pytest.raises(ApiError) as info:
        patch.json_patch(_deploy(), ops)
    assert info.value.code == code


def test_json_patch_test_is_type_strict() -> None:
    with pytest.raises(ApiError):
        patch.json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])


def test_merge_patch_rfc7386() -> None:
    assert patch.merge_patch({"a": {"b": 1, "c": 2}, "l": [1, 2]},
                             {"a": {"b": None, "d": 3}, "l": [3]}) == {"a": {"c": 2, "d": 3},
                                                                         "l": [3]}
    assert patch.merge_patch({"a": 1}, [1]) == [1]
    assert patch.merge_patch({"a": {"b": 1}}, {"a": "x"}) == {"a": "x"}


def test_strategic_merges_lists_by_merge_key() -> None:
    out = patch.strategic_merge_patch(DEPLOY, _deploy(), {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "image": "i9", "ports": [{"containerPort": 81}],
                        "env": [{"name": "F", "value": "2"}], "args": ["z"]},
                       {"name": "c", "image": "i3"}]}}}})
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["a", "b", "c"]
    a = containers[0]
    assert a["image"] == "i9"
    assert [p["containerPort"] for p in a["ports"]] == [80, 81]
    assert [e["name"] for e in a["env"]] == ["E", "F"]
    assert a["args"] == ["z"], "lists of primitives without a strategy are replaced"


def test_strategic_replaces_lists_without_strategy() -> None:
    out = patch.strategic_merge_patch(DEPLOY, _deploy(), {"spec": {"template": {"spec": {
        "tolerations": [{"key": "new"}]}}}})
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "new"}]


def test_strategic_directives() -> None:
    base = _deploy()
    deleted = patch.strategic_merge_patch(DEPLOY, base, {"spec": {"template": {"spec": {
        "containers": [{"name": "b", "$patch": "delete"}]}}}})
    assert [c["name"] for c in deleted["spec"]["template"]["spec"]["containers"]] == ["a"]
    replaced = patch.strategic_merge_patch(DEPLOY, base, {"spec": {"template": {"spec": {
        "containers": [{"name": "q", "image": "x"}, {"$patch": "replace"}]}}}})
    assert replaced["spec"]["template"]["spec"]["containers"] == [{"name": "q", "image": "x"}]
    map_replace = patch.strategic_merge_patch(DEPLOY, base, {"metadata": {"labels": {
        "$patch": "replace", "z": "9"}}})
    assert map_replace["metadata"]["labels"] == {"z": "9"}
    map_delete = patch.strategic_merge_patch(DEPLOY, base, {"metadata": {"labels": {
        "$patch": "delete"}}})
    assert "labels" not in map_delete["metadata"]
    order = patch.strategic_merge_patch(DEPLOY, base, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "a", "image": "i5"}]}}}})
    assert [c["name"] for c in order["spec"]["template"]["spec"]["containers"]] == ["b", "a"]
    prim = patch.strategic_merge_patch(DEPLOY, base, {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["x"]}})
    assert prim["metadata"]["finalizers"] == []
    union = patch.strategic_merge_patch(DEPLOY, base, {"metadata": {"finalizers": ["y", "x"]}})
    assert union["metadata"]["finalizers"] == ["x", "y"]
    retain = patch.strategic_merge_patch(DEPLOY, base, {"spec": {"template": {"spec": {
        "volumes": [{"name": "v", "hostPath": {"path": "/x"},
                     "$retainKeys": ["name", "hostPath"]}]}}}})
    assert retain["spec"]["template"]["spec"]["volumes"] == [{"name": "v",
                                                             "hostPath": {"path": "/x"}}]
    assert base == _deploy()


def test_strategic_null_deletes_and_unknown_kinds_merge() -> None:
    out = patch.strategic_merge_patch(DEPLOY, _deploy(), {"spec": {"replicas": None}})
    assert "replicas" not in out["spec"]
    plain = patch.strategic_merge_patch(None, {"a": [1], "b": {"c": 1}}, {"a": [2],
                                                                          "b": {"d": 2}})
    assert plain == {"a": [2], "b": {"c": 1, "d": 2}}


def test_strategic_errors() -> None:
    with pytest.raises(ApiError) as info:
        patch.strategic_merge_patch(POD, {}, [1])
    assert info.value.code == 400
    with pytest.raises(ApiError):
        patch.strategic_merge_patch(POD, {"spec": {"containers": []}},
                                    {"spec": {"containers": [{"image": "no-name"}]}})
    with pytest.raises(ApiError):
        patch.strategic_merge_patch(POD, {}, {"metadata": {"$patch": "explode"}})


def test_strategic_conditions_merge_by_type() -> None:
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"},
                                     {"type": "PodScheduled", "status": "True"}]}}
    out = patch.strategic_merge_patch(POD, copy.deepcopy(pod), {"status": {"conditions": [
        {"type": "Ready", "status": "True"}]}})
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "PodScheduled", "status": "True"}]


from hypothesis import given, settings, strategies as st  # noqa: E402

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text("abc", max_size=2), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text("abc", max_size=2), _json, max_size=4),
       st.dictionaries(st.text("abc", max_size=2), _json, max_size=4))
def test_merge_patch_is_idempotent(obj: dict, doc: dict) -> None:
    once = patch.merge_patch(obj, doc)
    assert patch.merge_patch(once, doc) == once


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text("abc", min_size=1, max_size=2), _json, max_size=4),
       st.text("xyz", min_size=1, max_size=2), _json)
def test_json_patch_add_then_remove_restores(obj: dict, key: str, value) -> None:
    added = patch.json_patch(obj, [{"op": "add", "path": f"/{key}", "value": value}])
    assert added[key] == value
    assert patch.json_patch(added, [{"op": "remove", "path": f"/{key}"}]) == obj
