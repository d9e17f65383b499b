"""version, discovery, health, metrics and OpenAPI on a real API server."""

import aiohttp
import orjson
import pytest

from tinykube.apiserver import openapi
from tinykube.storage.store import UnavailableError

AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json")


@pytest.fixture
async def http(apiserver):
    async with aiohttp.ClientSession(apiserver.url) as session:
        yield session


async def _json(http, path, **kw):
    async with http.get(path, **kw) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json(content_type=None), resp


async def test_version(http):
    doc, _ = await _json(http, "/version")
    assert doc["gitVersion"] == "v1.32.0" and doc["platform"].startswith("linux/")


async def test_discovery_plain_and_aggregated(http, apiserver):
    doc, resp = await _json(http, "/api")
    assert doc["kind"] == "APIVersions"
    assert doc["serverAddressByClientCIDRs"][0]["serverAddress"] == f"127.0.0.1:{apiserver.port}"
    assert resp.headers["Content-Type"] == "application/json"
    doc, resp = await _json(http, "/api", headers={"Accept": AGGREGATED})
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert resp.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
    doc, _ = await _json(http, "/apis", headers={"Accept": AGGREGATED})
    assert "apps" in [i["metadata"]["name"] for i in doc["items"]]
    groups, resp = await _json(http, "/apis")
    assert groups["kind"] == "APIGroupList"
    async with http.get("/apis", headers={"If-None-Match": resp.headers["ETag"]}) as again:
        assert again.status == 304
    apps, _ = await _json(http, "/apis/apps")
    assert apps["kind"] == "APIGroup" and apps["preferredVersion"]["version"] == "v1"
    resources, _ = await _json(http, "/apis/apps/v1")
    assert "deployments/scale" in [r["name"] for r in resources["resources"]]
    async with http.get("/apis/nope/v1") as missing:
        assert missing.status == 404
        assert (await missing.json())["reason"] == "NotFound"


async def test_health_endpoints(http):
    for path in ("/healthz", "/livez", "/readyz", "/readyz/etcd", "/livez/ping"):
        async with http.get(path) as resp:
            assert (resp.status, await resp.text()) == (200, "ok"), path
    async with http.get("/livez?verbose") as resp:
        text = await resp.text()
    assert text.splitlines()[-1] == "livez check passed" and "[+]etcd ok" in text
    async with http.get("/readyz?verbose&exclude=etcd") as resp:
        text = await resp.text()
    assert "[+]etcd excluded: ok" in text and "[+]etcd ok" not in text
    async with http.get("/readyz/nope") as resp:
        assert resp.status == 404


async def test_health_fails_when_the_store_is_down(http, apiserver):
    class DownStore:
        async def current_revision(self):
            raise UnavailableError("connection refused")

    server = apiserver.server
    real, server.store = server.store, DownStore()
    try:
        async with http.get("/readyz") as resp:
            text = await resp.text()
            assert resp.status == 500
        assert "[-]etcd failed: reason withheld" in text
        assert text.rstrip().endswith("readyz check failed")
        async with http.get("/livez/etcd") as resp:
            assert resp.status == 500
        async with http.get("/livez/ping") as resp:
            assert resp.status == 200
    finally:
        server.store = real


async def test_metrics_count_requests(http):
    await _json(http, "/api/v1/namespaces/default/configmaps")
    async with http.get("/api/v1/namespaces/default/configmaps/missing") as resp:
        assert resp.status == 404
    async with http.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert ('apiserver_request_total{code="200",component="apiserver",dry_run="",group="",'
            'resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"}'
            in text)
    assert 'code="404"' in text and 'scope="resource"' in text
    assert "apiserver_request_duration_seconds_bucket" in text
    assert 'apiserver_storage_objects{resource="namespaces"}' in text
    assert 'apiserver_current_inflight_requests{request_kind="readOnly"} 1.0' in text
    assert "etcd_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


async def test_two_servers_have_separate_metrics(apiserver_factory):
    a, b = await apiserver_factory(), await apiserver_factory()
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{a.url}/api/v1/nodes") as resp:
                assert resp.status == 200
        async with session.get(f"{b.url}/metrics") as resp:
            text_b = await resp.text()
        async with session.get(f"{a.url}/metrics") as resp:
            text_a = await resp.text()
    assert 'resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1"} 3.0' \
        in text_a
    assert 'resource="nodes",scope="cluster"' not in text_b


async def test_openapi_v2_json_and_protobuf(http):
    async with http.get("/openapi/v2") as resp:
        assert resp.headers["Content-Type"] == "application/json"
        doc = orjson.loads(await resp.read())
        etag = resp.headers["ETag"]
    assert doc["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in doc["definitions"]
    async with http.get("/openapi/v2", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with http.get("/openapi/v2", headers={"Accept": openapi.PROTOBUF_V2}) as resp:
        assert resp.headers["Content-Type"] == openapi.PROTOBUF_V2_CONTENT_TYPE
        body = await resp.read()
    assert body[:1] == b"\x0a" and b"io.k8s.api.core.v1.Pod" in body


async def test_openapi_v3_index_hash_and_redirect(http):
    index, _ = await _json(http, "/openapi/v3")
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc, resp = await _json(http, url)
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    assert resp.headers["Cache-Control"] == "public, immutable"
    async with http.get("/openapi/v3/apis/apps/v1?hash=OLD", allow_redirects=False) as resp:
        assert resp.status == 301
        assert resp.headers["Location"] == url
    async with http.get("/openapi/v3/apis/nope/v1") as resp:
        assert resp.status == 404


async def test_open_watch_is_a_longrunning_request(http):
    url = "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=30"
    async with http.get(url) as watch:
        assert watch.status == 200
        async with http.get("/metrics") as resp:
            text = await resp.text()
    assert ('apiserver_longrunning_requests{component="apiserver",group="",'
            'resource="configmaps",scope="namespace",subresource="",verb="WATCH",'
            'version="v1"} 1.0' in text)


async def test_server_side_apply_is_counted_as_apply(http):
    body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: b\n"
    async with http.patch("/api/v1/namespaces/default/configmaps/ssa?fieldManager=test",
                          data=body,
                          headers={"Content-Type": "application/apply-patch+yaml"}) as resp:
        assert resp.status in (200, 201), await resp.text()
    async with http.get("/metrics") as resp:
        text = await resp.text()
    assert ('resource="configmaps",scope="resource",subresource="",verb="APPLY",version="v1"}'
            in text)
