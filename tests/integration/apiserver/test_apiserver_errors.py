"""Bad input always answers a Status with upstream's code, reason and message."""

from __future__ import annotations

CM_PATH = "/api/v1/namespaces/default/configmaps"
POD_PATH = "/api/v1/namespaces/default/pods"


def assert_status(body: dict, code: int, reason: str) -> None:
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body


async def test_malformed_json_is_400(apiserver):
    status, body = await apiserver.request("POST", CM_PATH, b'{"metadata": {',
                                           content_type="application/json")
    assert status == 400
    assert_status(body, 400, "BadRequest")
    assert "json parse error" in body["message"]


async def test_malformed_yaml_is_400(apiserver):
    status, body = await apiserver.request("POST", CM_PATH, b"metadata: [\n  name: x",
                                           content_type="application/yaml")
    assert status == 400
    assert_status(body, 400, "BadRequest")


async def test_unknown_resource_is_404(apiserver):
    for path in ("/api/v1/namespaces/default/widgets", "/apis/nope.example.com/v1/things",
                 "/api/v1/namespaces/default/configmaps/x/bogus"):
        status, body = await apiserver.request("GET", path)
        assert status == 404, path
        assert_status(body, 404, "NotFound")
    status, body = await apiserver.request("GET", "/api/v1/namespaces/default/widgets")
    assert body["message"] == "the server could not find the requested resource"


async def test_invalid_name_is_422_with_causes(apiserver):
    status, body = await apiserver.request("POST", CM_PATH, {"metadata": {"name": "Bad_Name"}})
    assert status == 422
    assert_status(body, 422, "Invalid")
    assert body["message"].startswith('ConfigMap "Bad_Name" is invalid: metadata.name: '
                                      'Invalid value: "Bad_Name"')
    assert body["details"]["causes"][0]["field"] == "metadata.name"


async def test_missing_name_is_422(apiserver):
    status, body = await apiserver.request("POST", CM_PATH, {"metadata": {}})
    assert status == 422
    assert_status(body, 422, "Invalid")
    assert "name or generateName is required" in body["message"]


async def test_missing_required_pod_fields_is_422(apiserver):
    status, body = await apiserver.request("POST", POD_PATH, {"metadata": {"name": "p"},
                                                              "spec": {"containers": []}})
    assert status == 422
    assert_status(body, 422, "Invalid")
    assert any(c["field"] == "spec.containers" for c in body["details"]["causes"])


async def test_namespace_mismatch_is_400(apiserver):
    status, body = await apiserver.request("POST", CM_PATH, {
        "metadata": {"name": "x", "namespace": "kube-system"}})
    assert status == 400
    assert_status(body, 400, "BadRequest")
    assert body["message"] == ("the namespace of the provided object does not match the "
                               "namespace sent on the request")


async def test_body_over_limit_is_413(apiserver_factory):
    server = await apiserver_factory(max_request_bytes=1024)
    status, body = await server.request("POST", CM_PATH, {
        "metadata": {"name": "big"}, "data": {"a": "x" * 4096}})
    assert status == 413
    assert_status(body, 413, "RequestEntityTooLarge")


async def test_unsupported_media_type_is_415(apiserver):
    status, body = await apiserver.request("POST", CM_PATH, b"name=x",
                                           content_type="application/x-www-form-urlencoded")
    assert status == 415
    assert_status(body, 415, "UnsupportedMediaType")
    status, body = await apiserver.request("PATCH", f"{CM_PATH}/x", {"data": {}},
                                           content_type="application/json")
    assert status == 415


async def test_method_not_allowed_is_405(apiserver):
    status, body = await apiserver.request("POST", f"{CM_PATH}/named", {"metadata": {}})
    assert status == 405
    assert_status(body, 405, "MethodNotAllowed")
    status, body = await apiserver.request("DELETE", "/api/v1/componentstatuses/x")
    assert status == 405


async def test_strict_field_validation(apiserver):
    obj = {"metadata": {"name": "s"}, "data": {}, "spec": {"foo": 1}}
    status, body = await apiserver.request("POST", CM_PATH + "?fieldValidation=Strict", obj)
    assert status == 400
    assert_status(body, 400, "BadRequest")
    assert body["message"] == 'strict decoding error: unknown field "spec"'
    pod = {"metadata": {"name": "p"},
           "spec": {"foo": 1, "containers": [{"name": "c", "image": "i", "bar": 2}]}}
    status, body = await apiserver.request("POST", POD_PATH + "?fieldValidation=Strict", pod)
    assert status == 400
    assert 'unknown field "spec.foo"' in body["message"]
    assert 'unknown field "spec.containers[0].bar"' in body["message"]


async def test_warn_field_validation_sends_warning_header(apiserver):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(apiserver.url + CM_PATH + "?fieldValidation=Warn",
                                json={"metadata": {"name": "w"}, "extra": 1}) as resp:
            assert resp.status == 201
            assert resp.headers.getall("Warning") == ['299 - "unknown field \\"extra\\""']


async def test_wrong_kind_in_body_is_400(apiserver):
    status, body = await apiserver.request("POST", CM_PATH, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}})
    assert status == 400
    assert_status(body, 400, "BadRequest")


async def test_bad_selectors_are_400(apiserver):
    status, body = await apiserver.request("GET", POD_PATH + "?fieldSelector=spec.foo%3Dbar")
    assert status == 400
    assert body["message"] == "field label not supported: spec.foo"
    status, body = await apiserver.request("GET", POD_PATH + "?labelSelector=a%20in%20(")
    assert status == 400
    assert_status(body, 400, "BadRequest")


async def test_missing_namespace_is_404_and_terminating_is_403(apiserver):
    status, body = await apiserver.request("POST", "/api/v1/namespaces/ghost/configmaps",
                                           {"metadata": {"name": "x"}})
    assert status == 404
    assert body["message"] == 'namespaces "ghost" not found'
    await apiserver.request("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    status, _ = await apiserver.request("DELETE", "/api/v1/namespaces/doomed")
    assert status == 200
    status, body = await apiserver.request("POST", "/api/v1/namespaces/doomed/configmaps",
                                           {"metadata": {"name": "x"}})
    assert status == 403
    assert_status(body, 403, "Forbidden")
    assert "unable to create new content in namespace doomed because it is being " \
           "terminated" in body["message"]


async def test_immortal_namespace_delete_is_403(apiserver):
    status, body = await apiserver.request("DELETE", "/api/v1/namespaces/default")
    assert status == 403
    assert body["message"] == 'namespaces "default" is forbidden: this namespace may not be ' \
                              'deleted'


async def test_bad_token_is_401(apiserver_factory):
    server = await apiserver_factory(token="s3cret")
    status, body = await server.request("GET", CM_PATH, headers={"Authorization": "Bearer nope"})
    assert status == 401
    assert_status(body, 401, "Unauthorized")
    status, _ = await server.request("GET", CM_PATH)
    assert status == 200


async def test_wrongly_typed_values_are_400_not_500(apiserver):
    bodies = [
        {"metadata": {"name": "a"}, "spec": "not-an-object"},
        {"metadata": {"name": "a"}, "spec": {"containers": [1]}},
        {"metadata": {"generateName": {"x": 1}}},
        {"metadata": {"name": "a"}, "spec": {"containers": [{
            "name": "c", "image": "i", "resources": {"requests": {"cpu": "lots"}}}]}},
    ]
    for body in bodies:
        status, answer = await apiserver.request("POST", POD_PATH, body)
        assert status == 400, (body, answer)
        assert_status(answer, 400, "BadRequest")
        assert answer["message"].startswith('Pod in version "v1" cannot be handled as a Pod')


async def test_merge_patch_is_checked_on_the_values_it_writes(apiserver):
    """A merge patch answers as if the whole patched object had been decoded: a wrong type
    or an unknown field in what it writes is refused or warned about, a null that removes
    an unknown key is not, and nothing is stored on failure."""
    import aiohttp

    merge = "application/merge-patch+json"
    pod = {"metadata": {"name": "mp"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    assert (await apiserver.request("POST", POD_PATH, pod))[0] == 201
    status, body = await apiserver.request("PATCH", f"{POD_PATH}/mp/status",
                                           {"status": {"conditions": "Ready"}}, content_type=merge)
    assert status == 400
    assert_status(body, 400, "BadRequest")
    assert body["message"].startswith('Pod in version "v1" cannot be handled as a Pod')
    status, body = await apiserver.request(
        "PATCH", f"{POD_PATH}/mp/status", {"status": {"phase": "Running", "bogus": 1}},
        content_type=merge, params={"fieldValidation": "Strict"})
    assert status == 400 and body["message"] == 'strict decoding error: unknown field "status.bogus"'
    assert (await apiserver.request("GET", f"{POD_PATH}/mp"))[1].get("status", {}).get("phase") != "Running"
    async with aiohttp.ClientSession() as session:
        async with session.patch(apiserver.url + f"{POD_PATH}/mp/status",
                                 data=b'{"status": {"phase": "Running", "bogus": 1, "gone": null}}',
                                 headers={"Content-Type": merge}) as resp:
            assert resp.status == 200
            assert resp.headers.getall("Warning") == ['299 - "unknown field \\"status.bogus\\""']
    status, body = await apiserver.request(
        "PATCH", f"{POD_PATH}/mp/status", {"status": {"phase": "Running", "gone": None}},
        content_type=merge, params={"fieldValidation": "Strict"})
    assert status == 200 and body["status"]["phase"] == "Running"
    # the status subresource keeps the spec, and a spec update is still validated in full
    status, body = await apiserver.request("PATCH", f"{POD_PATH}/mp",
                                           {"spec": {"containers": [{"name": "c", "image": ""}]}},
                                           content_type=merge)
    assert status == 422, body
    assert_status(body, 422, "Invalid")
