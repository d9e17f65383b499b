"""ClusterState: informer caches -> pages and change payloads, with the caches seeded."""

from __future__ import annotations

import pytest

from tinykube.client.rest import Client
from tinykube.dashboard.feed import Feed
from tinykube.dashboard.state import ClusterState


def obj(name: str, ns: str | None = None, **fields) -> dict:
    metadata = {"name": name, "resourceVersion": "1"}
    if ns:
        metadata["namespace"] = ns
    return {"metadata": metadata, **fields}


@pytest.fixture
async def state():
    client = Client("http://127.0.0.1:9", user_agent="test")  # never contacted
    feed = Feed()
    yield ClusterState(client, feed), feed
    await client.close()


async def test_watch_events_reach_the_feed_as_rows(state):
    cluster, feed = state
    sub = feed.subscribe()
    running = {"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}]}
    cluster.informers["pods"].apply_event("ADDED", obj(
        "web-1", "default", spec={"nodeName": "n1", "containers": [{"name": "c"}]},
        status=running))
    change = await sub.next(1.0)
    payload = cluster.change_row(change)
    assert (payload["resource"], payload["type"], payload["namespace"], payload["name"]) == \
        ("pods", "ADDED", "default", "web-1")
    assert (payload["row"]["status"], payload["row"]["ready"]) == ("Running", "1/1")

    cluster.informers["nodes"].apply_event("ADDED", obj("n1", status={
        "conditions": [{"type": "Ready", "status": "True"}]}))
    node_payload = cluster.change_row(await sub.next(1.0))
    assert node_payload["row"]["pods"] == 1 and node_payload["row"]["ready"]


async def test_pages_filter_by_namespace(state):
    cluster, _ = state
    cluster.informers["pods"].apply_list(
        [obj("a", "default", spec={}), obj("b", "other", spec={})], "5")
    cluster.informers["services"].apply_list(
        [obj("web", "default", spec={"clusterIP": "10.96.0.9"})], "5")
    cluster.informers["endpoints"].apply_list(
        [obj("web", "default", subsets=[{"addresses": [{"ip": "10.244.0.2"}]}]),
         obj("web", "other", subsets=[{"addresses": [{"ip": "10.244.9.9"}]}])], "5")
    assert [p["name"] for p in cluster.page("workloads")["pods"]] == ["a", "b"]
    assert [p["name"] for p in cluster.page("workloads", "other")["pods"]] == ["b"]
    [svc] = cluster.page("services", "default")["services"]
    assert svc["endpoints"] == ["10.244.0.2"]
    assert cluster.page("overview")["podPhases"] == {"Pending": 2}  # no phase yet
    with pytest.raises(KeyError):
        cluster.page("secrets")
