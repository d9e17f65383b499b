"""Decoding Kubernetes protobuf bodies (hand-encoded wire bytes, upstream field numbers)."""

from __future__ import annotations

import pytest

from tinykube.apiserver import protobuf
from tinykube.apiserver.openapi import varint


def ld(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return protobuf.MAGIC + ld(1, ld(1, api_version.encode()) + ld(2, kind.encode())) + ld(2, raw)


def test_deployment_with_special_types():
    # ObjectMeta: name=1, creationTimestamp=8 (Time: seconds=1), labels=11 (map)
    meta = ld(1, b"web") + ld(8, vi(1, 86400)) + ld(11, ld(1, b"app") + ld(2, b"web"))
    # DeploymentSpec: replicas=1, strategy=4 {type=1, rollingUpdate=2 {maxUnavailable=1,
    # maxSurge=2}} with IntOrString {type=1, intVal=2, strVal=3}
    max_unavailable = vi(1, 0) + vi(2, 1)
    max_surge = vi(1, 1) + ld(3, b"25%")
    strategy = ld(1, b"RollingUpdate") + ld(2, ld(1, max_unavailable) + ld(2, max_surge))
    spec = vi(1, 0) + ld(4, strategy)
    obj = protobuf.decode(envelope("apps/v1", "Deployment", ld(1, meta) + ld(2, spec)))
    assert obj["kind"] == "Deployment" and obj["apiVersion"] == "apps/v1"
    assert obj["metadata"] == {"name": "web", "creationTimestamp": "1970-01-02T00:00:00Z",
                               "labels": {"app": "web"}}
    assert obj["spec"]["replicas"] == 0
    assert obj["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": "25%"}


def test_go_zero_strings_are_dropped_and_quantities_are_strings():
    # Container: name=1, image=2, workingDir=5 (""), resources=8 {limits=1 map<string,Quantity>}
    quantity = ld(1, b"500m")
    resources = ld(1, ld(1, b"cpu") + ld(2, quantity))
    container = ld(1, b"c") + ld(2, b"busybox") + ld(5, b"") + ld(8, resources)
    pod_spec = ld(2, container)
    obj = protobuf.decode(envelope("v1", "Pod", ld(1, ld(1, b"p")) + ld(2, pod_spec)))
    c = obj["spec"]["containers"][0]
    assert c == {"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "500m"}}}


def test_inline_structs_are_flattened_as_in_json():
    # Volume: name=1, volumeSource=2 (inline) {hostPath=1 {path=1}};
    # EphemeralContainer: ephemeralContainerCommon=1 (inline) {name=1, image=2}, targetContainerName=2
    volume = ld(1, b"host-root") + ld(2, ld(1, ld(1, b"/")))
    ephemeral = ld(1, ld(1, b"dbg") + ld(2, b"busybox")) + ld(2, b"c")
    obj = protobuf.decode(envelope("v1", "Pod", ld(2, ld(1, volume) + ld(34, ephemeral))))
    assert obj["spec"]["volumes"] == [{"name": "host-root", "hostPath": {"path": "/"}}]
    assert obj["spec"]["ephemeralContainers"] == [{"name": "dbg", "image": "busybox", "targetContainerName": "c"}]


def test_a_probes_handler_and_a_key_selectors_name_are_inline_too():
    # Container: name=1, livenessProbe=10 {handler=1 (inline) {exec=1 {command=1}}, periodSeconds=4},
    # env=7 {name=1, valueFrom=3 {configMapKeyRef=3 {localObjectReference=1 (inline) {name=1}, key=2}}}
    probe = ld(1, ld(1, ld(1, b"true"))) + vi(4, 5)
    env = ld(1, b"A") + ld(3, ld(3, ld(1, ld(1, b"settings")) + ld(2, b"a")))
    container = ld(1, b"c") + ld(10, probe) + ld(7, env)
    c = protobuf.decode(envelope("v1", "Pod", ld(2, ld(2, container))))["spec"]["containers"][0]
    assert c["livenessProbe"] == {"exec": {"command": ["true"]}, "periodSeconds": 5}
    assert c["env"] == [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a"}}}]


def test_wire_names_that_differ_from_json_take_the_json_spelling():
    # ValidatingWebhookConfiguration: webhooks=2 (wire name "Webhooks") {name=1}
    obj = protobuf.decode(envelope("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
                                   ld(1, ld(1, b"v")) + ld(2, ld(1, b"hook.example.com"))))
    assert obj["webhooks"] == [{"name": "hook.example.com"}]


def test_negative_int_and_bytes():
    # Secret: metadata=1, data=2 map<string, bytes>
    secret = ld(1, ld(1, b"s")) + ld(2, ld(1, b"k") + ld(2, b"\x00\x01"))
    obj = protobuf.decode(envelope("v1", "Secret", secret))
    assert obj["data"] == {"k": "AAE="}
    # DeleteOptions: gracePeriodSeconds=1 (int64)
    opts = protobuf.decode(envelope("v1", "DeleteOptions", vi(1, -1)))
    assert opts["gracePeriodSeconds"] == -1


@pytest.mark.parametrize("body", [b"", b"{}", protobuf.MAGIC + b"\x0a\xff",
                                  envelope("v9", "Nothing", b"")])
def test_bad_bodies_raise(body):
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(body)
