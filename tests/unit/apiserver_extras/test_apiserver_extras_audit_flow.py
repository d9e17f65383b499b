"""The audit backend's stages for one request: received, complete, panic, refused."""

import asyncio
from unittest import mock

import orjson
import pytest
from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.test_utils import make_mocked_request

from tinykube.api import errors
from tinykube.apiserver import audit
from tinykube.apiserver.request import REQUEST_INFO, UserInfo, parse_request_info


class ListSink:
    def __init__(self):
        self.lines: list[dict] = []

    def write(self, data: bytes) -> None:
        self.lines.append(orjson.loads(data))

    def flush(self) -> None:
        pass


def _backend(level="RequestResponse", omit=()):
    policy = audit.Policy.from_dict({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                     "omitStages": list(omit),
                                     "rules": [{"level": level}]})
    sink = ListSink()
    return audit.AuditBackend(policy, audit.AuditLogWriter(sink)), sink


def _request(method, path, body=b""):
    payload = StreamReader(mock.Mock(), 2**16, loop=asyncio.get_running_loop())
    if body:
        payload.feed_data(body)
    payload.feed_eof()
    request = make_mocked_request(method, path, payload=payload,
                                  headers={"Content-Type": "application/json",
                                           "Content-Length": str(len(body))})
    info = parse_request_info(method, path, request.query)
    info.user = UserInfo("admin", ("system:masters",))
    info.request_uri = path
    request[REQUEST_INFO] = info
    return request, info


async def test_received_then_complete_with_bodies():
    backend, sink = _backend()
    request, info = _request("POST", "/api/v1/namespaces/default/configmaps")
    created = {"kind": "ConfigMap", "metadata": {"name": "c", "uid": "u"}}

    async def handler(_request):
        return web.json_response(created, status=201)

    response = await backend.middleware(request, handler)
    backend.observe(info, response.status, 0.01)
    backend.close()
    assert [e["stage"] for e in sink.lines] == ["RequestReceived", "ResponseComplete"]
    assert sink.lines[1]["responseObject"] == created
    assert "responseObject" not in sink.lines[0]
    assert sink.lines[0]["auditID"] == sink.lines[1]["auditID"] == info.audit_id


async def test_api_error_status_is_the_response_object():
    backend, sink = _backend(omit=["RequestReceived"])
    request, info = _request("GET", "/api/v1/namespaces/default/configmaps/x")

    async def handler(_request):
        raise errors.not_found("configmaps", "x")

    with pytest.raises(errors.ApiError):
        await backend.middleware(request, handler)
    backend.observe(info, 404, 0.01)
    backend.close()
    (event,) = sink.lines
    assert event["responseStatus"]["reason"] == "NotFound"
    assert event["responseObject"]["message"] == 'configmaps "x" not found'


async def test_a_crashing_handler_logs_panic_once():
    backend, sink = _backend(level="Metadata", omit=["RequestReceived"])
    request, info = _request("GET", "/api/v1/nodes")

    async def handler(_request):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await backend.middleware(request, handler)
    backend.observe(info, 500, 0.01)  # the pipeline still reports the request
    backend.close()
    assert [(e["stage"], e["responseStatus"]["code"]) for e in sink.lines] == [("Panic", 500)]


async def test_refused_requests_are_logged_by_the_observer():
    backend, sink = _backend(level="Metadata")
    info = parse_request_info("DELETE", "/api/v1/namespaces/a/secrets/s", {})
    backend.observe(info, 403, 0.001)
    backend.close()
    (event,) = sink.lines
    assert event["stage"] == "ResponseComplete" and event["responseStatus"]["code"] == 403
    assert event["annotations"] == {"authorization.k8s.io/decision": "forbid"}


async def test_request_body_is_replayed_for_the_handler():
    backend, sink = _backend(omit=["RequestReceived"])
    body = b'{"kind":"ConfigMap","metadata":{"name":"c"}}'
    request, info = _request("POST", "/api/v1/namespaces/default/configmaps", body)
    seen = {}

    async def handler(req):
        seen["body"] = await req.content.read()
        return web.json_response({}, status=201)

    await backend.middleware(request, handler)
    backend.observe(info, 201, 0.01)
    backend.close()
    assert seen["body"] == body
    assert sink.lines[0]["requestObject"] == orjson.loads(body)
    assert sink.lines[0]["objectRef"]["name"] == "c"
