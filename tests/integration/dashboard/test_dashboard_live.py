"""The dashboard against an in-process cluster: pages, the SSE stream, and the actions."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp
import orjson
import pytest

from tinykube.dashboard import Dashboard, DashboardConfig
from tinykube.testing import cluster

TIMEOUT = 30.0


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    }


@dataclass
class Message:
    event: str
    data: Any


class SSEReader:
    """Parses a text/event-stream body into messages (comments skipped)."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self.content = content
        self.history: list[Message] = []

    async def next(self) -> Message:
        event, data = "message", []
        while True:
            line = (await self.content.readline()).decode()
            if not line:
                raise EOFError("event stream ended")
            line = line.rstrip("\n")
            if not line:
                if data:
                    self.history.append(Message(event, orjson.loads("\n".join(data))))
                    return self.history[-1]
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)

    async def until(self, predicate: Callable[[Message], bool],
                    timeout: float = TIMEOUT) -> Message:
        async def scan() -> Message:
            while True:
                message = await self.next()
                if predicate(message):
                    return message
        return await asyncio.wait_for(scan(), timeout)

    async def seen_or_until(self, predicate: Callable[[Message], bool]) -> Message:
        """A message already read that matches, else the next one that does."""
        for message in self.history:
            if predicate(message):
                return message
        return await self.until(predicate)


def owned_by_rs_of(name: str, change: dict[str, Any]) -> bool:
    return change["row"]["owner"].startswith(f"ReplicaSet/{name}-")


async def running_pods(reader: SSEReader, deploy: str, count: int,
                       exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """Replay the stream (read so far, then new) until ``count`` pods of ``deploy``, none in
    ``exclude``, are Running at once; returns their name -> node."""
    running: dict[str, str] = {}

    def note(message: Message) -> bool:
        change = message.data
        if message.event != "change" or change["resource"] != "pods":
            return False
        if not owned_by_rs_of(deploy, change) or change["name"] in exclude:
            return False
        if change["type"] != "DELETED" and change["row"]["status"] == "Running":
            running[change["name"]] = change["row"]["node"]
        else:
            running.pop(change["name"], None)
        return len(running) >= count

    await reader.seen_or_until(note)
    return running


@pytest.fixture
async def live():
    async with cluster(nodes=2) as c:
        dash = Dashboard(DashboardConfig(kubeconfig=c.kubeconfig, port=0,
                                         keepalive_seconds=1.0))
        await dash.start()
        try:
            async with aiohttp.ClientSession(base_url=dash.url) as http:
                yield c, dash, http
        finally:
            await dash.stop()


async def get_json(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_deployment_pods_stream_in_and_scale(live):
    c, dash, http = live
    assert dash.port != 0 and dash.url.startswith("http://127.0.0.1:")
    async with http.get("/api/stream", params={"namespace": "default"}) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        reader = SSEReader(stream.content)
        assert (await reader.until(lambda m: True)).event == "hello"

        await c.apply(deployment("web", 2))
        running = await running_pods(reader, "web", 2)
        assert set(running.values()) <= {"node-0", "node-1"}

        await reader.until(lambda m: m.event == "change"
                           and m.data["resource"] == "deployments"
                           and m.data["name"] == "web" and m.data["row"]["ready"] == "2/2")
        workloads = await get_json(http, "/api/workloads?namespace=default")
        [web] = [d for d in workloads["deployments"] if d["name"] == "web"]
        assert (web["ready"], web["replicas"], web["images"]) == ("2/2", 2, "nginx")
        pods = [p for p in workloads["pods"] if p["owner"].startswith("ReplicaSet/web-")]
        assert {p["name"] for p in pods} == set(running)
        assert all(p["status"] == "Running" and p["ready"] == "1/1" and p["restarts"] == "0"
                   for p in pods)
        [rs] = workloads["replicasets"]
        assert rs["owner"] == "Deployment/web" and rs["ready"] == 2

        overview = await get_json(http, "/api/overview")
        assert overview["nodesReady"] == 2
        by_node = {n["name"]: n for n in overview["nodes"]}
        assert set(by_node) == {"node-0", "node-1"}
        for name, node in by_node.items():
            assert node["status"] == "Ready" and node["capacity"]["pods"]
            assert node["heartbeat"] != "<none>"  # the hollow node renews its Lease
            assert node["pods"] == sum(1 for p in pods if p["node"] == name)

        async with http.post("/api/namespaces/default/deployments/web/scale",
                             json={"replicas": 3}) as resp:
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["spec"]["replicas"] == 3
        await c.wait_for("deployments", "web", lambda d: d["spec"]["replicas"] == 3,
                         group="apps")
        running = await running_pods(reader, "web", 3)
        assert len(running) == 3

        await reader.seen_or_until(
            lambda m: m.event == "change" and m.data["resource"] == "events"
            and m.data["row"]["reason"] == "ScalingReplicaSet"
            and "to 3" in m.data["row"]["message"])
        events = await get_json(http, "/api/events?namespace=default&involved=Deployment/web")
        assert events["events"], "the scale should be visible in the deployment's events"
        assert all(e["objectName"] == "web" for e in events["events"])
        assert "to 3" in events["events"][0]["message"]  # newest first


async def test_delete_pod_is_replaced_and_shows_events(live):
    c, dash, http = live
    async with http.get("/api/stream") as stream:
        reader = SSEReader(stream.content)
        await reader.until(lambda m: m.event == "hello")
        await c.apply(deployment("api", 1))
        [victim] = await running_pods(reader, "api", 1)

        async with http.delete(f"/api/namespaces/default/pods/{victim}") as resp:
            assert resp.status == 200, await resp.text()
        await reader.until(lambda m: m.event == "change" and m.data["type"] == "DELETED"
                           and m.data["resource"] == "pods" and m.data["name"] == victim)
        replacement = await running_pods(reader, "api", 1, exclude=frozenset({victim}))

        workloads = await get_json(http, "/api/workloads?namespace=default")
        [rs] = workloads["replicasets"]
        await reader.seen_or_until(
            lambda m: m.event == "change" and m.data["resource"] == "events"
            and m.data["row"]["reason"] == "SuccessfulCreate"
            and m.data["row"]["objectName"] == rs["name"]
            and next(iter(replacement)) in m.data["row"]["message"])
        events = await get_json(http, f"/api/events?involved=ReplicaSet/{rs['name']}")
        assert [e["reason"] for e in events["events"]].count("SuccessfulCreate") == 2


async def test_pages_and_refused_actions(live):
    c, dash, http = live
    async with http.get("/") as resp:
        assert resp.status == 200 and "/app.js" in await resp.text()
    async with http.get("/app.js") as resp:
        assert "EventSource" in await resp.text()
    namespaces = await get_json(http, "/api/namespaces")
    assert {"default", "kube-system"} <= {n["name"] for n in namespaces["namespaces"]}
    services = await get_json(http, "/api/services?namespace=default")
    [kubernetes] = services["services"]
    assert kubernetes["name"] == "kubernetes"
    async with http.get("/api/nonsense") as resp:
        assert resp.status == 404
    async with http.get("/healthz") as resp:
        assert resp.status == 200

    scale = "/api/namespaces/default/deployments/missing/scale"
    async with http.post(scale, json={"replicas": 1}) as resp:
        assert resp.status == 404
    async with http.post(scale, json={"replicas": "three"}) as resp:
        assert resp.status == 400
    async with http.post(scale, data="replicas=1",
                         headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 415
    async with http.delete("/api/namespaces/default/pods/x",
                           headers={"Origin": "http://evil.example"}) as resp:
        assert resp.status == 403


async def test_stop_ends_open_streams():
    async with cluster(nodes=0) as c:
        dash = Dashboard(DashboardConfig(client=c.client, port=0))
        await dash.start()
        try:
            async with aiohttp.ClientSession(base_url=dash.url) as http:
                async with http.get("/api/stream") as stream:
                    reader = SSEReader(stream.content)
                    await reader.until(lambda m: m.event == "hello")
                    assert len(dash.feed) == 1
                    await asyncio.wait_for(dash.stop(), TIMEOUT)
                    with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
                        await reader.until(lambda m: False)
            assert len(dash.feed) == 0
            assert await c.client.resource("namespaces").get("default")  # still the caller's
        finally:
            await dash.stop()


async def test_requests_for_other_hosts_are_refused(live):
    c, dash, http = live
    async with http.get("/api/overview", headers={"Host": "rebound.example:8001"}) as resp:
        assert resp.status == 403
    async with http.get("/api/overview", headers={"Host": f"localhost:{dash.port}"}) as resp:
        assert resp.status == 200


async def test_unschedulable_pod_shows_pending_with_a_warning(live):
    c, dash, http = live
    async with http.get("/api/stream") as stream:
        reader = SSEReader(stream.content)
        await reader.until(lambda m: m.event == "hello")
        await c.apply({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": "huge", "namespace": "default"},
                       "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {
                           "requests": {"cpu": "1000"}}}]}})
        warning = await reader.seen_or_until(
            lambda m: m.event == "change" and m.data["resource"] == "events"
            and m.data["row"]["objectName"] == "huge")
    row = warning.data["row"]
    assert (row["type"], row["reason"], row["warning"]) == ("Warning", "FailedScheduling", True)
    assert "Insufficient cpu" in row["message"]
    events = await get_json(http, "/api/events?namespace=default&involved=Pod/huge")
    assert events["events"][0]["warning"]
    workloads = await get_json(http, "/api/workloads?namespace=default")
    [pod] = [p for p in workloads["pods"] if p["name"] == "huge"]
    assert (pod["status"], pod["ready"], pod["node"]) == ("Pending", "0/1", "<none>")
