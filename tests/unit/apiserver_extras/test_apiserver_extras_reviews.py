"""Access review decoding (JSON and kubectl's protobuf) and component status texts."""

import asyncio

import pytest

from tinykube.api.errors import ApiError
from tinykube.apiserver import authz_review, componentstatus
from tinykube.apiserver.request import UserInfo


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_protobuf_review_is_decoded_and_truncated_is_a_400():
    spec = _field(2, _field(1, b"/healthz") + _field(2, b"get")) + _field(3, b"bob")
    type_meta = _field(1, b"authorization.k8s.io/v1") + _field(2, b"SubjectAccessReview")
    raw = b"k8s\x00" + _field(1, type_meta) + _field(2, _field(1, b"") + _field(2, spec))
    obj = authz_review._decode(raw, "SubjectAccessReview", "authorization.k8s.io/v1")
    assert obj["spec"] == {"nonResourceAttributes": {"path": "/healthz", "verb": "get"},
                           "user": "bob"}
    with pytest.raises(ApiError) as err:
        authz_review._decode(b"k8s\x00\x12\x50abc", "SubjectAccessReview",
                             "authorization.k8s.io/v1")
    assert err.value.code == 400


def test_attributes_become_request_info():
    user = UserInfo("alice", ("dev",))
    info = authz_review.attributes_info(
        {"resourceAttributes": {"group": "apps", "version": "v1", "resource": "deployments",
                                "subresource": "scale", "namespace": "ns", "verb": "update",
                                "name": "web"}}, user, "SelfSubjectAccessReview")
    assert (info.api_group, info.resource, info.subresource, info.namespace, info.name,
            info.verb, info.user) == ("apps", "deployments", "scale", "ns", "web", "update",
                                      user)
    assert info.is_resource_request
    raw = authz_review.attributes_info({"nonResourceAttributes": {"path": "/metrics",
                                                                  "verb": "get"}},
                                       user, "SelfSubjectAccessReview")
    assert (raw.path, raw.verb, raw.is_resource_request) == ("/metrics", "get", False)
    with pytest.raises(ApiError) as err:
        authz_review.attributes_info({"resourceAttributes": {"verb": "get"},
                                      "nonResourceAttributes": {"path": "/"}}, user, "X")
    assert err.value.code == 422


def test_go_style_probe_errors():
    url = "https://127.0.0.1:10259/healthz"
    err = ConnectionRefusedError(111, "Connection refused")
    assert componentstatus.go_http_error(url, err) == \
        'Get "https://127.0.0.1:10259/healthz": dial tcp 127.0.0.1:10259: connect: ' \
        "connection refused"
    assert componentstatus.go_http_error(url, asyncio.TimeoutError()) == \
        ('Get "https://127.0.0.1:10259/healthz": context deadline exceeded '
         "(Client.Timeout exceeded while awaiting headers)")
    assert "no route to host" in componentstatus.go_http_error(
        url, OSError(113, "No route to host"))


def test_component_status_object():
    ok = componentstatus.component_status("scheduler", componentstatus.ProbeResult(True, "ok"))
    assert ok == {"kind": "ComponentStatus", "apiVersion": "v1",
                  "metadata": {"name": "scheduler", "creationTimestamp": None},
                  "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]}
    bad = componentstatus.component_status(
        "etcd-0", componentstatus.ProbeResult(False, error="store closed"))
    assert bad["conditions"] == [{"type": "Healthy", "status": "False",
                                  "error": "store closed"}]
