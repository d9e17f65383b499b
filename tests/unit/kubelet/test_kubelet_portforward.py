"""portforward.k8s.io over the kubelet's SPDY session, against a TCP server on loopback."""

from __future__ import annotations

import asyncio
import struct

import pytest

from tinykube.kubelet import spdy
from tinykube.kubelet.portforward import PortForwarder
from tinykube.kubelet.runtime.interface import LoopbackRefused
from tinykube.testing.spdyclient import Client


@pytest.fixture
async def shouting_server():
    """Answers each line upper-cased; on end-of-file from its client it sends "BYE" and closes."""
    seen_eof, accepted = asyncio.Event(), asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        while line := await reader.readline():
            writer.write(line.upper())
        seen_eof.set()
        writer.write(b"BYE")
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    server.seen_eof, server.accepted = seen_eof, accepted
    yield server
    server.close()
    await server.wait_closed()


async def forwarding(connect):
    client = Client()
    forwarder = PortForwarder(connect, "ns/pod", "uid-1")
    return client, forwarder, spdy.Session(client.send, forwarder.on_stream)


async def test_a_request_pair_is_forwarded_both_ways_with_half_close(shouting_server):
    port = shouting_server.sockets[0].getsockname()[1]
    client, forwarder, session = await forwarding(lambda p: asyncio.open_connection("127.0.0.1", p))
    headers = {"port": str(port), "requestID": "0"}
    await session.feed(client.syn_stream(1, {"streamType": "error", **headers}, fin=True))
    await session.feed(client.syn_stream(3, {"streamType": "data", **headers}))
    await session.feed(spdy.data_frame(3, b"hello\n") + spdy.data_frame(3, b"again\n", spdy.FLAG_FIN))
    # the pod's answer arrives after the client's FIN: the half-close did not cut it off
    assert await client.until_fin(3) == b"HELLO\nAGAIN\nBYE"
    assert shouting_server.seen_eof.is_set()
    assert await client.until_fin(1) == b""  # no error
    await forwarder.close()


async def test_a_refused_port_is_reported_on_the_error_stream():
    async def refuse(port: int):
        raise ConnectionRefusedError(111, f"Connect call failed ('127.0.0.1', {port})")

    client, forwarder, session = await forwarding(refuse)
    await session.feed(client.syn_stream(1, {"streamtype": "error", "port": "9", "requestid": "7"}, fin=True))
    await session.feed(client.syn_stream(3, {"streamtype": "data", "port": "9", "requestid": "7"}))
    error = (await client.until_fin(1)).decode()
    assert error.startswith("error forwarding port 9 to pod ns/pod, uid uid-1: ")
    assert error.endswith("dial tcp4 127.0.0.1:9: connect: connection refused")
    assert await client.until_fin(3) == b""
    await forwarder.close()


async def test_a_port_refused_on_both_loopbacks_names_both():
    async def refuse(port: int):
        raise LoopbackRefused(ConnectionRefusedError(111, "refused"), ConnectionRefusedError(111, "refused"))

    client, forwarder, session = await forwarding(refuse)
    await session.feed(client.syn_stream(1, {"streamtype": "error", "port": "9", "requestid": "7"}, fin=True))
    await session.feed(client.syn_stream(3, {"streamtype": "data", "port": "9", "requestid": "7"}))
    error = (await client.until_fin(1)).decode()
    assert error.endswith("IPv4: dial tcp4 127.0.0.1:9: connect: connection refused "
                          "IPv6 dial tcp6 [::1]:9: connect: connection refused")
    await forwarder.close()


async def test_streams_without_a_port_or_type_are_refused():
    client, forwarder, session = await forwarding(lambda p: asyncio.open_connection("127.0.0.1", p))
    await session.feed(client.syn_stream(1, {"streamtype": "data", "port": "http"}))
    await session.feed(client.syn_stream(3, {"streamtype": "resize", "port": "80"}))
    def two_resets() -> list | None:
        resets = [struct.unpack(">II", f.payload) for f in client.log if f.kind == spdy.RST_STREAM]
        return resets if len(resets) == 2 else None

    assert await client.until(two_resets) == [(1, spdy.REFUSED_STREAM), (3, spdy.REFUSED_STREAM)]
    await forwarder.close()


async def test_closing_stops_forwards_still_running(shouting_server):
    port = shouting_server.sockets[0].getsockname()[1]
    client, forwarder, session = await forwarding(lambda p: asyncio.open_connection("127.0.0.1", p))
    for sid, kind in ((1, "error"), (3, "data")):
        await session.feed(client.syn_stream(sid, {"streamtype": kind, "port": str(port), "requestid": "1"}))
    await asyncio.wait_for(shouting_server.accepted.wait(), 5)
    assert forwarder._tasks
    session.close()
    await asyncio.wait_for(forwarder.close(), 5)
    assert not forwarder._tasks
