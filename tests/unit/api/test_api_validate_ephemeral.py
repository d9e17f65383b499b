"""Ephemeral containers' validation: fields a workload relies on, targets, and updates."""

from __future__ import annotations

import copy

from tinykube.api.fieldpath import Path
from tinykube.api.validate_ephemeral import ephemeral_containers, on_update

POD = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "main", "image": "x"}]}}


def with_ephemeral(*containers: dict, pod: dict = POD) -> dict:
    out = copy.deepcopy(pod)
    out["spec"]["ephemeralContainers"] = list(containers)
    return out


def fields(causes) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in causes]


def test_what_an_ephemeral_container_may_not_hold():
    spec = with_ephemeral({"name": "d", "image": "b", "targetContainerName": "nope", "readinessProbe": {"exec": {}},
                           "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "x"}]},
                          {"name": "main", "image": "b"})["spec"]
    assert fields(ephemeral_containers(spec, Path("spec"), lambda c, p: [])) == [
        ("spec.ephemeralContainers[0].targetContainerName", 'Not found: "nope"'),
        ("spec.ephemeralContainers[0].readinessProbe", "Forbidden: cannot be set for an Ephemeral Container"),
        ("spec.ephemeralContainers[0].volumeMounts[0].subPath", "Forbidden: cannot be set for an Ephemeral Container"),
        ("spec.ephemeralContainers[1].name", 'Duplicate value: "main"')]


def test_added_may_be_neither_removed_nor_changed_nor_on_a_static_pod():
    first = {"name": "d", "image": "b"}
    old = with_ephemeral(first)
    assert on_update(with_ephemeral(first, {"name": "e", "image": "b"}), old) == []
    assert fields(on_update(with_ephemeral({"name": "e", "image": "b"}), old)) == [
        ("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "d" may not be removed\n')]
    assert fields(on_update(with_ephemeral({"name": "d", "image": "c"}), old)) == [
        ("spec.ephemeralContainers[d]", 'Forbidden: existing ephemeral containers "d" may not be changed\n')]
    static = {**POD, "metadata": {"name": "p", "annotations": {"kubernetes.io/config.mirror": "abc"}}}
    assert fields(on_update(with_ephemeral(first, pod=static), static)) == [
        ("", "Forbidden: static pods do not support ephemeral containers")]
