"""pods/log and pods/exec relayed to a kubelet (a fake one, HTTPS on loopback)."""

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from tinykube.client.pki import serving_cert

LINES = [b"line %d\n" % i for i in range(1, 4)]


class FakeKubelet:
    """Serves /containerLogs and /exec like a kubelet, recording what it was asked."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        app.router.add_get("/exec/{ns}/{pod}/{container}", self.exec)
        self.runner = web.AppRunner(app)
        self.port = 0

    async def start(self) -> None:
        ctx = serving_cert("node-1", ["node-1", "localhost", "127.0.0.1"]).server_context()
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def logs(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.query)))
        if request.match_info["container"] == "sidecar":
            return web.Response(status=400, text='container "sidecar" in pod "web" is '
                                                 "waiting to start: ContainerCreating")
        resp = web.StreamResponse()
        await resp.prepare(request)
        for line in LINES:
            await resp.write(line)
        await resp.write_eof()
        return resp

    async def exec(self, request: web.Request) -> web.WebSocketResponse:
        self.requests.append((request.path, {k: request.query.getall(k)
                                             for k in request.query}))
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        await ws.prepare(request)
        await ws.send_bytes(b"\x01ready\n")
        async for msg in ws:
            if msg.type == WSMsgType.BINARY and msg.data[:1] == b"\x00":
                await ws.send_bytes(b"\x01" + msg.data[1:].upper())
                await ws.send_bytes(b'\x03{"metadata":{},"status":"Success"}')
                break
        await ws.close()
        return ws


@pytest.fixture
async def kubelet():
    fake = FakeKubelet()
    await fake.start()
    yield fake
    await fake.runner.cleanup()


@pytest.fixture
async def cluster(apiserver, kubelet):
    """A node pointing at the fake kubelet and pods on it."""
    client = apiserver.client()
    async with client:
        nodes = client.resource("nodes")
        node = await nodes.create({"apiVersion": "v1", "kind": "Node",
                                   "metadata": {"name": "node-1"}})
        node["status"] = {
            "addresses": [{"type": "Hostname", "address": "node-1"},
                          {"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}}
        await nodes.update(node, subresource="status")
        pods = client.resource("pods")
        containers = [{"name": "app", "image": "busybox"}]
        for name, spec in (
            ("web", {"nodeName": "node-1", "containers": containers}),
            ("pair", {"nodeName": "node-1", "containers": [
                *containers, {"name": "sidecar", "image": "busybox"}]}),
            ("pending", {"containers": containers}),
        ):
            await pods.create({"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": name}, "spec": spec}, namespace="default")
        await apiserver.server.watch_cache.sync()
    return apiserver


async def test_logs_are_streamed_from_the_kubelet(cluster, kubelet):
    url = (f"{cluster.url}/api/v1/namespaces/default/pods/web/log"
           "?follow=true&tailLines=10&timestamps=true&ignored=1")
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        body = await resp.read()
    assert body == b"".join(LINES)
    path, query = kubelet.requests[-1]
    assert path == "/containerLogs/default/web/app"
    assert query == {"follow": "true", "tailLines": "10", "timestamps": "true"}


async def test_log_errors(cluster, kubelet):
    base = f"{cluster.url}/api/v1/namespaces/default/pods"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/pair/log") as resp:
            status = await resp.json()
            assert resp.status == 400
        assert status["message"] == ("a container name must be specified for pod pair, "
                                     "choose one of: [app sidecar]")
        async with session.get(f"{base}/pair/log?container=nope") as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == "container nope is not valid for pod pair"
        async with session.get(f"{base}/pair/log?container=sidecar") as resp:
            assert resp.status == 400
            assert "is waiting to start: ContainerCreating" in (await resp.json())["message"]
        async with session.get(f"{base}/pending/log") as resp:
            assert resp.status == 400
            assert (await resp.json())["message"] == "pod pending does not have a host assigned"


async def test_default_container_annotation(cluster, kubelet):
    client = cluster.client()
    async with client:
        await client.resource("pods").patch(
            "pair", {"metadata": {"annotations": {
                "kubectl.kubernetes.io/default-container": "sidecar"}}},
            namespace="default", patch_type="merge")
    await cluster.server.watch_cache.sync()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{cluster.url}/api/v1/namespaces/default/pods/pair/log") as r:
            assert r.status == 400  # the fake kubelet refuses sidecar: it was chosen
    assert kubelet.requests[-1][0] == "/containerLogs/default/pair/sidecar"


async def test_exec_is_relayed_over_websocket(cluster, kubelet):
    url = (f"{cluster.url}/api/v1/namespaces/default/pods/web/exec"
           "?command=sh&command=-c&command=cat&stdin=true&stdout=true&tty=false")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=("v5.channel.k8s.io",
                                                      "v4.channel.k8s.io")) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            first = await ws.receive(timeout=10)
            assert first.data == b"\x01ready\n"
            await ws.send_bytes(b"\x00hello")
            echoed = await ws.receive(timeout=10)
            assert echoed.data == b"\x01HELLO"
            status = await ws.receive(timeout=10)
            assert status.data.startswith(b"\x03") and b"Success" in status.data
            closing = await ws.receive(timeout=10)
            assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    path, query = kubelet.requests[-1]
    assert path == "/exec/default/web/app"
    assert query == {"command": ["sh", "-c", "cat"], "stdin": ["true"], "stdout": ["true"],
                     "tty": ["false"]}


@pytest.mark.parametrize("subresource, versions, words", [
    ("attach?stdout=true", "v3.channel.k8s.io", ("attach over SPDY needs the v4.channel.k8s.io",)),
    ("exec?command=ls&stdout=true", "v3.channel.k8s.io, v2.channel.k8s.io", ("needs the v4.channel.k8s.io",)),
])
async def test_spdy_upgrades_it_cannot_serve_are_refused_with_a_status(cluster, subresource, versions, words):
    url = f"{cluster.url}/api/v1/namespaces/default/pods/web/{subresource}"
    headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": versions}
    async with aiohttp.ClientSession() as session, session.post(url, headers=headers) as resp:
        assert resp.status == 400
        status = await resp.json()
    assert all(word in status["message"] for word in words), status["message"]
