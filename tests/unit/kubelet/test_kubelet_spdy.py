"""The kubelet's SPDY/3.1 session: frames as kubectl's port-forward client sends them."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest

from tinykube.kubelet import spdy
from tinykube.testing.spdyclient import Client


def session(client: Client) -> tuple[spdy.Session, list[spdy.Stream]]:
    opened: list[spdy.Stream] = []

    def take(stream: spdy.Stream) -> bool:
        opened.append(stream)
        return True

    return spdy.Session(client.send, take), opened


def test_dictionary_is_spdy3s():
    assert len(spdy.DICTIONARY) == 1423
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


async def test_a_stream_fed_one_byte_at_a_time_is_opened_and_answered():
    client = Client()
    server, opened = session(client)
    for i, byte in enumerate(client.syn_stream(1, {"streamType": "error", "port": "8080", "requestID": "0"})):
        assert not opened, f"opened after {i} bytes"
        await server.feed(bytes([byte]))
    assert [s.headers for s in opened] == [{"streamtype": "error", "port": "8080", "requestid": "0"}]
    (reply,) = client.frames()
    assert (reply.kind, reply.stream, reply.headers) == (spdy.SYN_REPLY, 1, {})
    # the header compression state carries over to the next stream, both ways
    await server.feed(client.syn_stream(3, {"streamType": "data", "port": "8080", "requestID": "0"}))
    assert opened[1].headers["streamtype"] == "data"
    assert [(f.kind, f.stream, f.headers) for f in client.frames()] == [(spdy.SYN_REPLY, 3, {})]


async def test_data_then_fin_reads_in_order_and_reopens_the_window():
    client = Client()
    server, opened = session(client)
    await server.feed(client.syn_stream(1, {"streamtype": "data"}))
    client.frames()
    await server.feed(spdy.data_frame(1, b"hello ") + spdy.data_frame(1, b"world", spdy.FLAG_FIN))
    stream = opened[0]
    assert [await stream.read(), await stream.read(), await stream.read()] == [b"hello ", b"world", b""]
    updates = [struct.unpack(">II", f.payload) for f in client.frames() if f.kind == spdy.WINDOW_UPDATE]
    assert updates == [(1, 6), (1, 5)]
    await server.feed(spdy.data_frame(1, b"late"))  # after FIN: ignored
    assert stream._inbox.empty()
    assert 1 in server.streams
    await stream.close()  # now closed both ways: the session forgets it
    assert server.streams == {}


async def test_writes_are_split_into_data_frames_and_close_sends_fin():
    client = Client()
    server, opened = session(client)
    await server.feed(client.syn_stream(1, {}))
    client.frames()
    payload = bytes(range(256)) * 800  # 200 KiB
    await opened[0].write(payload)
    await opened[0].close()
    await opened[0].close()  # only one FIN
    frames = client.frames()
    assert all(f.kind == 0 and f.stream == 1 and len(f.payload) <= spdy.MAX_DATA for f in frames)
    assert b"".join(f.payload for f in frames) == payload
    assert [f.flags for f in frames[-2:]] == [0, spdy.FLAG_FIN] and frames[-1].payload == b""


async def test_ping_is_echoed_and_settings_are_accepted():
    client = Client()
    server, _ = session(client)
    await server.feed(spdy.control_frame(spdy.SETTINGS, struct.pack(">III", 1, 7, 65536)))
    await server.feed(spdy.control_frame(spdy.PING, struct.pack(">I", 41)))
    assert [(f.kind, f.payload) for f in client.frames()] == [(spdy.PING, struct.pack(">I", 41))]


async def test_reset_and_goaway_end_the_streams_reads():
    client = Client()
    server, opened = session(client)
    await server.feed(client.syn_stream(1, {}) + client.syn_stream(3, {}))
    await server.feed(spdy.control_frame(spdy.RST_STREAM, struct.pack(">II", 1, spdy.CANCEL)))
    assert await asyncio.wait_for(opened[0].read(), 1) == b""
    await server.feed(spdy.control_frame(spdy.GOAWAY, struct.pack(">II", 3, 0)))
    assert await asyncio.wait_for(opened[1].read(), 1) == b""
    with pytest.raises(ConnectionResetError):
        await opened[1].write(b"too late")


async def test_protocol_errors():
    client = Client()
    server, opened = session(client)
    await server.feed(client.syn_stream(2, {}))  # servers' ids are even: a client may not use one
    assert not opened
    (reset,) = client.frames()
    assert reset.kind == spdy.RST_STREAM and struct.unpack(">II", reset.payload) == (2, spdy.PROTOCOL_ERROR)
    with pytest.raises(spdy.SpdyError, match="version 2"):
        await session(client)[0].feed(struct.pack(">HHI", 0x8002, 6, 4) + b"\0" * 4)
    garbage = struct.pack(">IIH", 1, 0, 0) + zlib.compress(b"not with the dictionary")
    with pytest.raises(spdy.SpdyError, match="header block"):
        await session(client)[0].feed(spdy.control_frame(spdy.SYN_STREAM, garbage))
    with pytest.raises(spdy.SpdyError, match="truncated"):
        spdy.decode_headers(struct.pack(">II", 1, 50) + b"short")
