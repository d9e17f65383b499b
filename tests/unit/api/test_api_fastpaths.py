"""The write path's fast paths give the answers of the plain walks they short-cut.

Type checks and unknown-field checks first ask a path-free walker whether anything is
wrong and only then build the report; these tests break a realistic object at every
value and compare both. Also: json_copy is a deep copy, the in-place merge patch equals
RFC 7386 applied by copying, FieldsV1 encoding (now cached) hands out fresh trees, and
the inner-path set agrees with ``_is_leaf``.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

import pytest

from tinykube.api import apply, decoding, fieldsets, meta, patch, schema
from tinykube.api.kinds import lookup
from tinykube.apiserver import fieldvalidation

PODS = lookup("", "v1", "pods")
DEPLOYMENTS = lookup("apps", "v1", "deployments")


def pod() -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "d", "labels": {"app": "x"},
                     "annotations": {"a": "b"}, "ownerReferences": [
                         {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                          "uid": "u", "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"],
                                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                 "resources": {"requests": {"cpu": "100m"}},
                                 "env": [{"name": "A", "value": "1"}]}],
                 "terminationGracePeriodSeconds": 0, "nodeName": "n",
                 "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 300}],
                 "nodeSelector": {"zone": "a"}},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2024-01-01T00:00:00Z"}],
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": "t"}},
                                          "lastState": {}}]},
    }


def deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"metadata": {"labels": {"app": "x"}},
                                  "spec": pod()["spec"]}}}


def locations(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every container (dict key / list index) path in ``value``, leaves included."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from locations(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from locations(v, path + (i,))


def replaced(obj: dict, path: tuple, value: Any) -> dict:
    out = copy.deepcopy(obj)
    cur = out
    for step in path[:-1]:
        cur = cur[step]
    cur[path[-1]] = value
    return out


def full_type_walk(info, obj: dict) -> list:
    root = schema.definition_for(info)
    out: list = []
    for key, value in obj.items():
        decoding._walk(value, (root.get("properties") or {}).get(key), key, key, info.kind, out)
    return out


BAD_VALUES = [True, 7, 1.5, 2.0, "s", [], [None], {}, {"x": 1}, None]


@pytest.mark.parametrize("info,make", [(PODS, pod), (DEPLOYMENTS, deployment)])
def test_type_fast_path_agrees_with_the_walk(info, make) -> None:
    base = make()
    assert decoding.type_problems(info, base) == []
    checked = 0
    for path in locations(base):
        if not path:
            continue
        for bad in BAD_VALUES:
            obj = replaced(base, path, bad)
            expected = full_type_walk(info, obj)
            assert decoding.type_problems(info, obj) == expected, (path, bad)
            checked += bool(expected)
    assert checked > 50  # the mutations did produce problems


@pytest.mark.parametrize("info,make", [(PODS, pod), (DEPLOYMENTS, deployment)])
def test_unknown_field_fast_path_agrees_with_the_walk(info, make) -> None:
    root = schema.definition_for(info)
    base = make()
    assert fieldvalidation.unknown_fields(info, base) == []
    found = 0
    for path in locations(base):
        if not path:
            continue
        for extra in ({"bogus": 1}, [{"bogus": 1}], "s"):
            obj = replaced(base, path, extra)
            expected: list[str] = []
            fieldvalidation._walk(root, obj, "", expected)
            assert fieldvalidation.unknown_fields(info, obj) == expected, (path, extra)
            found += bool(expected)
        parent = path[:-1]
        target = base
        for step in parent:
            target = target[step]
        if isinstance(target, dict):
            obj = replaced(base, parent + ("zzUnknown",), 1) if parent else {**base, "zz": 1}
            expected = []
            fieldvalidation._walk(root, obj, "", expected)
            assert fieldvalidation.unknown_fields(info, obj) == expected
            found += bool(expected)
    assert found > 20


def test_json_copy_is_a_deep_copy() -> None:
    obj = pod()
    obj["weird"] = {"t": (1, 2), "s": {1, 2}}
    out = meta.json_copy(obj)
    assert out == copy.deepcopy(obj)
    ids = {id(v) for p in locations(obj) for v in [_at(obj, p)] if isinstance(v, (dict, list, set))}
    assert not ids & {id(v) for p in locations(out) for v in [_at(out, p)]
                      if isinstance(v, (dict, list, set))}
    assert out["weird"]["s"] is not obj["weird"]["s"]


def _at(obj: Any, path: tuple) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def reference_merge_patch(obj: Any, p: Any) -> Any:
    if not isinstance(p, dict):
        return copy.deepcopy(p)
    result = copy.deepcopy(obj) if isinstance(obj, dict) else {}
    for key, value in p.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = reference_merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


@pytest.mark.parametrize("doc", [
    {"status": {"phase": "Succeeded", "podIP": None, "conditions": [{"type": "X"}]}},
    {"metadata": {"labels": {"app": None, "new": "1"}, "annotations": None}},
    {"spec": {"nodeSelector": {"zone": {"deep": {"er": None, "x": [1]}}}}},
    {"spec": "replaced"}, {"a": {"b": {"c": None}}}, {},
])
@pytest.mark.parametrize("owned", [False, True])
def test_merge_patch_matches_rfc7386_by_copying(doc: dict, owned: bool) -> None:
    original = pod()
    before = copy.deepcopy(original)
    document = copy.deepcopy(doc)
    out = patch.merge_patch(original, document, owned=owned)
    assert out == reference_merge_patch(before, doc)
    assert document == doc
    if not owned:
        assert original == before
    for p in locations(doc):  # nothing of the patch is shared with the result
        v = _at(doc, p) if p else doc
        if isinstance(v, (dict, list)) and v:
            assert all(v is not _at(out, q) for q in locations(out))


def test_encode_hands_out_fresh_trees() -> None:
    root = schema.definition_for(PODS)
    paths = fieldsets.field_set(root, pod())
    first = fieldsets.encode(paths)
    first["f:spec"]["mutated"] = {}
    second = fieldsets.encode(set(paths))
    assert "mutated" not in second["f:spec"]
    assert fieldsets.decode(second) == paths


def test_inner_paths_are_the_non_leaves() -> None:
    root = schema.definition_for(PODS)
    paths = fieldsets.field_set(root, pod())
    inner = fieldsets.inner_paths(paths)
    assert {p for p in paths if not apply._is_leaf(p, paths)} == inner


def whole_set_changes(info, old: dict, new: dict, subresource: str | None) -> tuple[set, set]:
    """What an update changed and removed, from both objects' whole field sets."""
    root = schema.definition_for(info)
    old_set = fieldsets.field_set(root, old, subresource)
    new_set = fieldsets.field_set(root, new, subresource)
    inner = fieldsets.inner_paths(new_set)
    changed = {p for p in new_set if p not in old_set or (
        p not in inner and fieldsets.value_at(old, p) != fieldsets.value_at(new, p))}
    return changed, old_set - new_set


def removed_at(obj: dict, path: tuple) -> dict:
    out = copy.deepcopy(obj)
    cur = out
    for step in path[:-1]:
        cur = cur[step]
    del cur[path[-1]]
    return out


@pytest.mark.parametrize("subresource", [None, "status"])
@pytest.mark.parametrize("info,make", [(PODS, pod), (DEPLOYMENTS, deployment)])
def test_changes_skip_equal_parts_and_agree_with_the_whole_sets(info, make, subresource) -> None:
    root = schema.definition_for(info)
    base = make()
    base.setdefault("status", {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]})
    assert fieldsets.changes(root, base, copy.deepcopy(base), subresource) == (set(), set())
    differing = 0
    for path in locations(base):
        if not path:
            continue
        variants = [replaced(base, path, value) for value in BAD_VALUES + [{"name": "c"}, [{"name": "z"}]]]
        variants.append(removed_at(base, path))
        for new in variants:
            for old, updated in ((base, new), (new, base)):
                expected = whole_set_changes(info, old, updated, subresource)
                assert fieldsets.changes(root, old, updated, subresource) == expected, (path, updated)
                differing += expected != (set(), set())
    assert differing > 100
