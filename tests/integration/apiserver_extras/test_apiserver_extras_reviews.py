"""Access reviews and component statuses on a real API server."""

import aiohttp
import pytest
from aiohttp import web

from tinykube.apiserver import authz_review, componentstatus

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@pytest.fixture
async def http(apiserver):
    async with aiohttp.ClientSession(apiserver.url) as session:
        yield session


@pytest.fixture
async def healthz_port():
    """The port of a loopback HTTP server answering ``GET /healthz`` with ``ok``."""
    async def healthz(_request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _post(http, path, body, **kw):
    async with http.post(path, **kw, **({"json": body} if body is not None else {})) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_self_subject_access_review(http):
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "create",
                                            "resource": "pods"}}}
    status, out = await _post(http, SSAR, body)
    assert status == 201
    assert out["status"]["allowed"] is True
    assert out["spec"] == body["spec"] and out["kind"] == "SelfSubjectAccessReview"


def _protobuf_review() -> bytes:
    """A SelfSubjectAccessReview as kubectl 1.33 encodes it (runtime.Unknown envelope)."""
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    attributes = (field(1, b"default") + field(2, b"create") + field(5, b"pods"))
    review = field(1, b"") + field(2, field(1, attributes)) + field(3, b"")
    type_meta = field(1, b"authorization.k8s.io/v1") + field(2, b"SelfSubjectAccessReview")
    return b"k8s\x00" + field(1, type_meta) + field(2, review)


async def test_protobuf_review_is_decoded(http):
    headers = {"Content-Type": "application/vnd.kubernetes.protobuf",
               "Accept": "application/vnd.kubernetes.protobuf,application/json"}
    async with http.post(SSAR, data=_protobuf_review(), headers=headers) as resp:
        assert resp.status == 201
        out = await resp.json()
    assert out["spec"]["resourceAttributes"] == {"namespace": "default", "verb": "create",
                                                 "resource": "pods"}
    assert out["status"]["allowed"] is True


async def test_review_errors(http):
    status, out = await _post(http, SSAR, {"kind": "SelfSubjectAccessReview", "spec": {}})
    assert status == 422 and out["reason"] == "Invalid"
    assert "exactly one of nonResourceAttributes or resourceAttributes" in out["message"]
    status, out = await _post(http, SSAR, None, data=b"{not json")
    assert status == 400 and out["reason"] == "BadRequest"
    status, out = await _post(http, SSAR, {"kind": "Pod"})
    assert status == 400
    sar = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    status, out = await _post(http, sar, {"spec": {"nonResourceAttributes": {
        "path": "/healthz", "verb": "get"}}})
    assert status == 422 and "at least one of user or group" in out["message"]


async def test_subject_access_review_and_deny(apiserver_factory):
    running = await apiserver_factory(authorization_mode="AlwaysDeny", anonymous_auth=True)
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "spec": {"user": "bob", "groups": ["dev"],
                    "resourceAttributes": {"verb": "get", "resource": "pods"}}}
    info = authz_review.attributes_info(sar["spec"], authz_review.user_from_spec(sar["spec"]),
                                        "SubjectAccessReview")
    status = await authz_review.review_status(running.server, info)
    assert status["allowed"] is False and status["reason"] == "Everything is forbidden."


async def test_self_subject_review(http):
    for version in ("v1", "v1beta1"):
        status, out = await _post(http, f"/apis/authentication.k8s.io/{version}/"
                                        "selfsubjectreviews", {})
        assert status == 201
        assert out["apiVersion"] == f"authentication.k8s.io/{version}"
        assert out["status"]["userInfo"]["username"] == "system:anonymous"


async def test_component_statuses(http, apiserver, unused_tcp_port_factory, healthz_port):
    closed = unused_tcp_port_factory()
    apiserver.server.componentstatus_targets = {
        # plain HTTP behind an https URL, as tinykube's scheduler serves it
        "scheduler": f"https://127.0.0.1:{healthz_port}/healthz",
        "controller-manager": f"http://127.0.0.1:{closed}/healthz",
    }
    async with http.get("/api/v1/componentstatuses") as resp:
        assert resp.status == 200
        doc = await resp.json()
    by_name = {i["metadata"]["name"]: i["conditions"][0] for i in doc["items"]}
    assert doc["kind"] == "ComponentStatusList"
    assert by_name["scheduler"] == {"type": "Healthy", "status": "True", "message": "ok"}
    assert by_name["etcd-0"] == {"type": "Healthy", "status": "True", "message": "ok"}
    assert by_name["controller-manager"] == {
        "type": "Healthy", "status": "False",
        "message": f'Get "http://127.0.0.1:{closed}/healthz": dial tcp '
                   f"127.0.0.1:{closed}: connect: connection refused"}
    async with http.get("/api/v1/componentstatuses/etcd-0") as resp:
        assert (await resp.json())["kind"] == "ComponentStatus"
    async with http.get("/api/v1/componentstatuses/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["message"] == 'componentstatuses "nope" not found'
    table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with http.get("/api/v1/componentstatuses",
                        headers={"Accept": table_accept}) as resp:
        table = await resp.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Status"]


async def test_self_subject_rules_review(http, apiserver_factory):
    path = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
    status, out = await _post(http, path, {"spec": {"namespace": "default"}})
    assert status == 201
    assert out["status"] == {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                "resources": ["*"]}],
                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                             "incomplete": False}
    status, out = await _post(http, path, {"spec": {}})
    assert status == 422 and "spec.namespace" in out["message"]
    denying = await apiserver_factory(authorization_mode="AlwaysDeny")
    rules = authz_review.rules_status(denying.server, authz_review.UserInfo("bob"), "default")
    assert rules == {"resourceRules": [], "nonResourceRules": [], "incomplete": False}


async def test_component_statuses_follow_control_plane_pods(http, apiserver, healthz_port):
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "kube-scheduler-node-1", "namespace": "kube-system",
                        "labels": {"component": "kube-scheduler", "tier": "control-plane"}},
           "spec": {"containers": [{"name": "kube-scheduler", "image": "tinykube/x",
                                    "livenessProbe": {"httpGet": {
                                        "host": "127.0.0.1", "port": healthz_port,
                                        "path": "/healthz", "scheme": "HTTP"}}}]}}
    client = apiserver.client()
    async with client:
        await client.resource("pods").create(pod, namespace="kube-system")
    await apiserver.server.watch_cache.sync()
    async with http.get("/api/v1/componentstatuses/scheduler") as resp:
        status = await resp.json()
    assert status["conditions"] == [{"type": "Healthy", "status": "True", "message": "ok"}]
    assert componentstatus.targets(apiserver.server)["controller-manager"] == \
        componentstatus.DEFAULT_TARGETS["controller-manager"]
