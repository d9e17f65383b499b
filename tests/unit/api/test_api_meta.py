"""Metadata accessors and time helpers."""

from datetime import timezone

import pytest

from tinykube.api import meta


def test_accessors_on_empty_object_return_defaults() -> None:
    obj: dict = {}
    assert meta.name(obj) == "" and meta.namespace(obj) == ""
    assert meta.labels(obj) == {} and meta.annotations(obj) == {}
    assert meta.owner_references(obj) == [] and meta.controller_of(obj) is None
    assert meta.deletion_timestamp(obj) is None and meta.resource_version(obj) == ""


def test_key_and_split_key_round_trip() -> None:
    pod = {"metadata": {"name": "web", "namespace": "default"}}
    node = {"metadata": {"name": "n1"}}
    assert meta.key(pod) == "default/web"
    assert meta.key(node) == "n1"
    assert meta.split_key("default/web") == ("default", "web")
    assert meta.split_key("n1") == ("", "n1")
    with pytest.raises(ValueError):
        meta.split_key("a/b/c")


def test_controller_of_picks_the_controlling_reference() -> None:
    obj = {"metadata": {"ownerReferences": [
        {"kind": "A", "name": "a"}, {"kind": "ReplicaSet", "name": "rs", "controller": True}]}}
    assert meta.controller_of(obj)["name"] == "rs"


def test_owner_reference_points_at_owner() -> None:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
             "metadata": {"name": "rs", "uid": "u1"}}
    ref = meta.owner_reference(owner)
    assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1",
                   "controller": True, "blockOwnerDeletion": True}


def test_now_is_rfc3339_seconds_utc() -> None:
    stamp = meta.now()
    assert stamp.endswith("Z") and len(stamp) == 20
    assert meta.parse_time(stamp).tzinfo is not None


@pytest.mark.parametrize("text", ["2024-01-02T03:04:05Z", "2024-01-02T03:04:05.123456789Z",
                                  "2024-01-02T05:04:05+02:00", "2024-01-02T03:04:05.5Z"])
def test_parse_time_accepts_rfc3339_forms(text: str) -> None:
    parsed = meta.parse_time(text).astimezone(timezone.utc)
    assert (parsed.hour, parsed.minute, parsed.second) == (3, 4, 5)


@pytest.mark.parametrize("text", ["", "yesterday", "2024-01-02", "2024-01-02T03:04:05"])
def test_parse_time_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        meta.parse_time(text)


def test_new_uid_is_unique() -> None:
    assert len({meta.new_uid() for _ in range(100)}) == 100
