"""Metric names and labels as kube-apiserver exports them; one registry per server."""

from prometheus_client import generate_latest

from tinykube.apiserver import metrics
from tinykube.apiserver.request import parse_request_info


def _info(method: str, path: str, query: dict | None = None, uri: str = ""):
    info = parse_request_info(method, path, query or {})
    info.request_uri = uri or path
    return info


def test_labels_follow_upstream_verbs_and_scopes():
    labels = metrics.request_labels(_info("GET", "/api/v1/namespaces/default/pods"))
    assert labels == {"verb": "LIST", "dry_run": "", "group": "", "version": "v1",
                      "resource": "pods", "subresource": "", "scope": "namespace",
                      "component": "apiserver"}
    watch = metrics.request_labels(_info("GET", "/apis/apps/v1/deployments", {"watch": "1"}))
    assert (watch["verb"], watch["scope"], watch["group"]) == ("WATCH", "cluster", "apps")
    create = metrics.request_labels(_info(
        "POST", "/api/v1/namespaces/x/pods", uri="/api/v1/namespaces/x/pods?dryRun=All"))
    assert (create["verb"], create["dry_run"]) == ("POST", "All")
    one = metrics.request_labels(_info("PUT", "/api/v1/namespaces/x/pods/p/status"))
    assert (one["verb"], one["scope"], one["subresource"]) == ("PUT", "resource", "status")
    exec_ = metrics.request_labels(_info("POST", "/api/v1/namespaces/x/pods/p/exec"))
    assert exec_["verb"] == "CONNECT"
    raw = metrics.request_labels(_info("GET", "/healthz"))
    assert (raw["verb"], raw["resource"], raw["scope"], raw["subresource"]) == \
        ("GET", "", "", "/healthz")


def test_observe_request_counts_and_times():
    m = metrics.APIServerMetrics.create()
    info = _info("GET", "/api/v1/namespaces/default/pods/p")
    m.observe_request(info, 200, 0.003)
    m.observe_request(info, 404, 0.5)
    text = generate_latest(m.registry).decode()
    assert ('apiserver_request_total{code="200",component="apiserver",dry_run="",group="",'
            'resource="pods",scope="resource",subresource="",verb="GET",version="v1"} 1.0'
            in text)
    assert 'code="404"' in text
    assert ('apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",'
            'group="",le="0.005",resource="pods",scope="resource",subresource="",verb="GET",'
            'version="v1"} 1.0' in text)
    assert "process_resident_memory_bytes" in text


def test_two_servers_do_not_share_counters():
    a, b = metrics.APIServerMetrics.create(), metrics.APIServerMetrics.create()
    a.observe_request(_info("GET", "/api/v1/nodes"), 200, 0.01)
    assert 'verb="LIST"' in generate_latest(a.registry).decode()
    assert 'verb="LIST"' not in generate_latest(b.registry).decode()


async def test_storage_objects_and_instrumented_store():
    class Store:
        async def count(self, prefix):
            return 5, 3 if prefix == "/registry/pods/" else 0

        async def get(self, key, revision=None):
            return 5, None

    m = metrics.APIServerMetrics.create()
    store = metrics.InstrumentedStore(Store(), m.etcd_durations)
    assert await store.get("/registry/pods/default/x") == (5, None)
    await m.refresh_storage_objects(store)
    text = generate_latest(m.registry).decode()
    assert 'apiserver_storage_objects{resource="pods"} 3.0' in text
    assert 'apiserver_storage_objects{resource="deployments.apps"} 0.0' in text
    assert 'etcd_request_duration_seconds_count{operation="get",type="pods"} 1.0' in text
    assert 'etcd_request_duration_seconds_count{operation="count",type="pods"} 1.0' in text


def test_request_kind():
    assert metrics.request_kind("GET") == "readOnly"
    assert metrics.request_kind("PATCH") == "mutating"
