"""Status errors carry upstream's exact messages, reasons and details."""

import pytest

from tinykube.api import errors, kinds

PODS = kinds.resolve("pods")
DEPLOY = kinds.resolve("deployments")
CM = kinds.resolve("configmaps")


def test_not_found_core_and_grouped() -> None:
    err = errors.not_found(PODS, "x")
    assert err.code == 404 and err.reason == "NotFound"
    assert err.message == 'pods "x" not found'
    assert err.status()["details"] == {"name": "x", "kind": "pods"}
    grouped = errors.not_found(DEPLOY, "web")
    assert grouped.message == 'deployments.apps "web" not found'
    assert grouped.status()["details"] == {"name": "web", "group": "apps", "kind": "deployments"}


def test_status_shape() -> None:
    status = errors.already_exists(PODS, "x").status()
    assert status == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": 'pods "x" already exists', "reason": "AlreadyExists",
                      "details": {"name": "x", "kind": "pods"}, "code": 409}


def test_conflict_message() -> None:
    err = errors.conflict(CM, "x")
    assert err.code == 409 and err.reason == "Conflict"
    assert err.message == ('Operation cannot be fulfilled on configmaps "x": the object has '
                           'been modified; please apply your changes to the latest version and '
                           'try again')


def test_invalid_single_and_multiple_causes() -> None:
    one = errors.invalid(CM, "Bad_Name", [errors.Cause.invalid("metadata.name", "Bad_Name",
                                                               "bad")])
    assert one.code == 422 and one.reason == "Invalid"
    assert one.message == 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": bad'
    assert one.status()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": 'Invalid value: "Bad_Name": bad',
         "field": "metadata.name"}]
    many = errors.invalid(kinds.resolve("pods"), "x", [
        errors.Cause.required("spec.containers[0].image"),
        errors.Cause.not_supported("spec.restartPolicy", "Sometimes", ["Always", "Never"])])
    assert many.message == ('Pod "x" is invalid: [spec.containers[0].image: Required value, '
                            'spec.restartPolicy: Unsupported value: "Sometimes": supported '
                            'values: "Always", "Never"]')
    assert errors.invalid(DEPLOY, "d", [errors.Cause.required("spec.selector")]).message == (
        'Deployment.apps "d" is invalid: spec.selector: Required value')


def test_from_status_round_trip() -> None:
    err = errors.gone_expired("too old resource version: 5 (10)")
    back = errors.ApiError.from_status(err.status())
    assert (back.code, back.reason, back.message) == (410, "Expired",
                                                      "too old resource version: 5 (10)")
    assert errors.ApiError.from_status({}, 503).code == 503


def test_other_constructors() -> None:
    assert errors.bad_request("nope").status()["code"] == 400
    forbidden = errors.forbidden(PODS, "x", 'User "bob" cannot get resource "pods"')
    assert forbidden.message == 'pods "x" is forbidden: User "bob" cannot get resource "pods"'
    assert errors.forbidden(PODS, "", "no").message == "pods is forbidden: no"
    assert errors.request_entity_too_large("limit is 3145728").reason == "RequestEntityTooLarge"
    mns = errors.method_not_supported(PODS, "deletecollection")
    assert (mns.code, mns.reason) == (405, "MethodNotAllowed")
    assert mns.message == 'deletecollection is not supported on resources of kind "pods"'
    assert errors.unsupported_media_type("text/plain", ["application/json"]).code == 415
    term = errors.namespace_terminating(PODS, "p", "ns1")
    assert term.code == 403 and "because it is being terminated" in term.message
    assert term.causes[0]["reason"] == "NamespaceTerminating"
    assert errors.internal_error("boom").message == "Internal error occurred: boom"
    assert errors.service_unavailable("x").code == 503
    assert errors.timeout("x").code == 504


def test_go_repr_of_values() -> None:
    assert errors.Cause.invalid("f", 0).message == "Invalid value: 0"
    assert errors.Cause.invalid("f", True).message == "Invalid value: true"
    assert errors.Cause.invalid("f", 'a"b').message == 'Invalid value: "a\\"b"'


def test_ignore_not_found_drops_only_404() -> None:
    with errors.ignore_not_found():
        raise errors.not_found("pods", "web")
    with pytest.raises(errors.ApiError) as info:
        with errors.ignore_not_found():
            raise errors.ApiError(409, "Conflict", "conflict")
    assert info.value.code == 409
