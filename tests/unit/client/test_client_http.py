"""The REST client's own HTTP/1.1 pool: keep-alive, limits, framing, retries, TLS, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from tinykube.api.errors import ApiError
from tinykube.client import pki
from tinykube.client.http import ConnectionPool, Origin, encode_query
from tinykube.client.rest import Client

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, host: str = "127.0.0.1",
                    ssl_context=None) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def peer_recording_app(peers: list[tuple]) -> web.Application:
    """Answers every path with its query; records the client's address per request."""
    async def echo(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        if request.path == "/missing":
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound",
                                      "message": "nope"}, status=404)
        return web.json_response({"query": dict(request.query), "raw": request.raw_path.partition("?")[2],
                                  "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


class RawServer:
    """A plain asyncio server, for answers aiohttp would not send; counts connections."""

    def __init__(self, handler: RawHandler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await self.handler(reader, writer, self.connections)
        writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head and body; b'' once the client has closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            head += await reader.readexactly(int(line.split(b":")[1]))
    return head


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sequential_requests_share_one_connection():
    peers: list[tuple] = []
    async with serve_app(peer_recording_app(peers)) as port:
        async with Client(f"http://127.0.0.1:{port}", token="t") as client:
            for _ in range(5):
                assert (await client.request("GET", "/x"))["query"] == {}
            await client.request("POST", "/x", body={"a": 1})
            assert client.pool.connections == 1
    assert len(peers) == 6 and len(set(peers)) == 1


async def test_pool_never_opens_more_than_its_size():
    peers: set[tuple] = set()
    busy = 0
    most = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal busy, most
        peers.add(request.transport.get_extra_info("peername"))
        busy += 1
        most = max(most, busy)
        await asyncio.sleep(0.05)
        busy -= 1
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/slow", slow)
    async with serve_app(app) as port:
        async with Client(f"http://127.0.0.1:{port}", pool_size=3) as client:
            await asyncio.gather(*(client.request("GET", "/slow") for _ in range(4)))
            assert client.pool.connections <= 3
            await asyncio.gather(*(client.request("GET", "/slow") for _ in range(10)))
    assert len(peers) == 3 and most == 3


async def test_chunked_answer_then_reuse():
    async def handler(reader, writer, _):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        await writer.drain()

    server = RawServer(handler)
    async with server as url, Client(url) as client:
        assert await client.get_raw("/a") == b"hello world"
        assert await client.get_raw("/b") == b"ok"
    assert server.connections == 1


async def test_connection_close_is_honoured():
    async def handler(reader, writer, _):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        await asyncio.sleep(0.2)  # the client must not wait for the server to hang up

    server = RawServer(handler)
    async with server as url, Client(url) as client:
        for _ in range(3):
            assert await asyncio.wait_for(client.get_raw("/"), 0.15) == b"hi"
        assert client.pool.connections == 0
    assert server.connections == 3


async def test_client_close_closes_pooled_connections():
    hung_up = asyncio.Event()

    async def handler(reader, writer, _):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        assert await read_request(reader) == b""
        hung_up.set()

    async with RawServer(handler) as url:
        client = Client(url)
        await client.get_raw("/")
        assert client.pool.connections == 1
        await client.close()
        await asyncio.wait_for(hung_up.wait(), 2)


async def test_body_without_length_is_read_to_eof():
    async def handler(reader, writer, _):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of ")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"it")

    server = RawServer(handler)
    async with server as url, Client(url) as client:
        assert await client.get_raw("/") == b"all of it"
        assert await client.get_raw("/") == b"all of it"
        assert client.pool.connections == 0
    assert server.connections == 2


async def test_no_body_for_204_and_head():
    async def handler(reader, writer, _):
        await read_request(reader)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nend")
        await writer.drain()

    server = RawServer(handler)
    async with server as url, Client(url) as client:
        assert await client.request_raw("DELETE", "/") == b""
        assert await client.request_raw("HEAD", "/") == b""
        assert await client.request_raw("GET", "/") == b"end"
    assert server.connections == 1


async def answer_once_then_hang_up(reader, writer, index):
    """Answer one request with the connection's index, then drop the next one unanswered."""
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(index).encode())
    await writer.drain()
    await read_request(reader)


async def test_stale_idle_connection_is_retried_once_on_a_fresh_one():
    """The server drops a kept-alive connection just as the next request goes out."""
    server = RawServer(answer_once_then_hang_up)
    async with server as url, Client(url) as client:
        assert await client.get_raw("/") == b"1"
        assert await client.request_raw("PUT", "/", body={}) == b"2"
        assert await client.get_raw("/") == b"3"
    assert server.connections == 3


async def test_stale_connection_does_not_repeat_a_post():
    """A POST the server may have applied before hanging up is not sent a second time."""
    server = RawServer(answer_once_then_hang_up)
    async with server as url, Client(url) as client:
        assert await client.get_raw("/") == b"1"
        with pytest.raises(ConnectionError, match="POST"):
            await client.request_raw("POST", "/", body={})
        assert await client.get_raw("/") == b"2"
    assert server.connections == 2


async def test_idle_connection_the_server_closed_is_not_reused():
    async def handler(reader, writer, index):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(index).encode())
        await writer.drain()

    server = RawServer(handler)
    async with server as url, Client(url) as client:
        assert await client.get_raw("/") == b"1"
        await asyncio.sleep(0.05)  # the server has hung up meanwhile
        assert await client.get_raw("/") == b"2"
    assert server.connections == 2


async def test_fresh_connection_failing_is_not_retried():
    async def handler(reader, writer, _):
        await read_request(reader)  # hang up without answering

    server = RawServer(handler)
    async with server as url, Client(url) as client:
        with pytest.raises(ConnectionError) as err:
            await client.request("GET", "/api/v1/pods")
    assert str(err.value).startswith(f"GET {url}/api/v1/pods: ")
    assert server.connections == 1


@pytest.mark.parametrize("answer, message", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "3 of 10"),  # truncated body
    (b"garbage\r\n\r\n", "bad status line"),
])
async def test_broken_answer_is_a_connection_error(answer, message):
    async def handler(reader, writer, _):
        await read_request(reader)
        writer.write(answer)

    async with RawServer(handler) as url, Client(url) as client:
        with pytest.raises(ConnectionError, match=message):
            await client.get_raw("/")
        assert client.pool.connections == 0


async def test_refused_connection_names_method_and_url():
    url = f"http://127.0.0.1:{free_port()}"
    async with Client(url) as client:
        with pytest.raises(ConnectionError) as err:
            await client.resource("pods").list(namespace="ns")
    assert str(err.value).startswith(f"GET {url}/api/v1/namespaces/ns/pods: ")


async def test_cancelled_request_closes_its_connection():
    answered = asyncio.Event()

    async def handler(reader, writer, _):
        await read_request(reader)
        answered.set()
        await asyncio.sleep(5)

    async with RawServer(handler) as url, Client(url) as client:
        task = asyncio.create_task(client.get_raw("/"))
        await answered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.pool.connections == 0


async def test_whole_request_timeout_raises_timeout_error():
    async def handler(reader, writer, _):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await asyncio.sleep(5)

    async with RawServer(handler) as url:
        pool = ConnectionPool(url, None, 1, {}, timeout=0.2)
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/")
        assert pool.connections == 0
        await pool.close()


async def test_slow_connect_is_a_connection_error():
    async def handler(reader, writer, _):
        await asyncio.sleep(5)  # never answers the TLS handshake

    async with RawServer(handler) as url:
        pool = ConnectionPool(url.replace("http:", "https:"), None, 1, {}, connect_timeout=0.2)
        with pytest.raises(ConnectionError, match="timed out connecting"):
            await pool.request("GET", "/")
        await pool.close()


async def test_selectors_reach_the_server_unchanged():
    params = {"labelSelector": "a=b,c!=d,x in (a,b),!e", "fieldSelector": "spec.nodeName=n 1",
              "resourceVersion": "12", "continue": "eyJ2Ijoi+/=", "odd": "&%?#é"}
    async with serve_app(peer_recording_app([])) as port:
        async with Client(f"http://127.0.0.1:{port}") as client:
            answer = await client.request("GET", "/api/v1/pods", params=params)
    assert answer["query"] == params
    assert "+" not in answer["raw"] and "%20" in answer["raw"]
    assert encode_query({"a": "x y"}) == "a=x%20y"


async def test_errors_become_api_errors():
    async with serve_app(peer_recording_app([])) as port:
        async with Client(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(ApiError) as err:
                await client.request("GET", "/missing")
    assert err.value.code == 404 and err.value.message == "nope"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_https_with_the_cluster_ca(host):
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    ca = pki.new_ca()
    serving = pki.serving_cert("apiserver", [host], ca)
    peers: list[tuple] = []
    try:
        server = serve_app(peer_recording_app(peers), host, serving.server_context())
        port = await server.__aenter__()
    except OSError:
        pytest.skip(f"cannot listen on {host}")
    try:
        url = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        async with Client(url, ca_data=ca.cert_pem) as client:
            for _ in range(3):
                assert (await client.request("GET", "/v", params={"q": "1"}))["query"] == {"q": "1"}
        assert len(peers) == 3 and len(set(peers)) == 1
        async with Client(url, ca_data=pki.new_ca().cert_pem) as stranger:
            with pytest.raises(ConnectionError, match=re.escape(f"GET {url}/v: ")):
                await stranger.request("GET", "/v")
    finally:
        await server.__aexit__(None, None, None)


def test_origin_host_label_matches_what_metrics_always_showed():
    assert Origin.parse("https://127.0.0.1:6443").host_header == "127.0.0.1:6443"
    assert Origin.parse("https://[0:0::1]:6443/").host_header == "[::1]:6443"
    assert Origin.parse("https://Example.COM:443").host_header == "example.com"
    assert Origin.parse("http://h/prefix/").base_path == "/prefix"


async def test_request_hook_counts_every_request():
    seen: list[tuple[str, str, str]] = []

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n')
        return response

    app = peer_recording_app([])
    app.router.add_get("/api/v1/configmaps", watch)
    async with serve_app(app) as port:
        async with Client(f"http://127.0.0.1:{port}", on_request_done=lambda *a: seen.append(a)
                          ) as client:
            await client.request("PUT", "/x", body={})
            with pytest.raises(ApiError):
                await client.request("GET", "/missing")
            events = [e async for e in client.resource("configmaps").watch()]
            assert events == [("ADDED", {"metadata": {"name": "a"}})]
    host = f"127.0.0.1:{port}"
    assert seen == [("200", "PUT", host), ("404", "GET", host), ("200", "GET", host)]
    async with Client(f"http://127.0.0.1:{port}", on_request_done=lambda *a: seen.append(a)
                      ) as client:
        with pytest.raises(ConnectionError):
            await client.request("DELETE", "/x")
    assert seen[-1] == ("<error>", "DELETE", host)


def test_kube_proxy_metrics_count_requests_by_code_method_and_host():
    from tinykube.proxy.metrics import ProxyMetrics

    metrics = ProxyMetrics()
    metrics.count_request("200", "GET", "127.0.0.1:6443")
    metrics.count_request("200", "GET", "127.0.0.1:6443")
    value = metrics.registry.get_sample_value(
        "rest_client_requests_total", {"code": "200", "method": "GET", "host": "127.0.0.1:6443"})
    assert value == 2
