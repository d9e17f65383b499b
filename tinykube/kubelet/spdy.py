"""SPDY/3.1 framing, the server side: what kubectl's port-forward speaks to the kubelet.

kubectl 1.31 and later carry port-forward's SPDY session inside a WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``), so a session here runs over any byte pipe: ``feed()``
takes what arrived, ``send`` writes what the session answers. Only what a client-initiated
session needs is implemented: SYN_STREAM (answered with an empty SYN_REPLY), DATA, FIN,
RST_STREAM, PING (echoed), SETTINGS, WINDOW_UPDATE and GOAWAY. Header blocks are zlib
streams seeded with SPDY/3's dictionary, one per direction for the whole session.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
PROTOCOL_ERROR, REFUSED_STREAM, CANCEL = 1, 3, 5
MAX_DATA = 64 * 1024  # bytes per DATA frame this side sends

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# SPDY/3's header-compression dictionary (1,423 bytes): length-prefixed words, then a tail.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class SpdyError(Exception):
    """The peer broke the protocol; the session cannot go on."""


def control_frame(kind: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, flags: int = 0) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, flags << 24 | len(data)) + data


def _rst_frame(stream_id: int, status: int) -> bytes:
    return control_frame(RST_STREAM, struct.pack(">II", stream_id, status))


def encode_headers(headers: dict[str, str]) -> bytes:
    """A header block before compression: count, then length-prefixed names and values."""
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        for text in (name.lower().encode(), value.encode()):
            parts.append(struct.pack(">I", len(text)) + text)
    return b"".join(parts)


def decode_headers(block: bytes) -> dict[str, str]:
    try:
        (count,), offset = struct.unpack_from(">I", block), 4
        headers: dict[str, str] = {}
        for _ in range(count):
            fields = []
            for _ in range(2):
                (size,) = struct.unpack_from(">I", block, offset)
                fields.append(block[offset + 4:offset + 4 + size].decode("utf-8", "replace"))
                offset += 4 + size
            headers[fields[0].lower()] = fields[1]
    except struct.error:
        raise SpdyError("truncated header block") from None
    return headers


class Stream:
    """One client-opened stream: its headers, what it sent (``read``), what it gets back."""

    def __init__(self, session: Session, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.remote_closed = False  # the client sent FIN (or reset the stream)
        self.local_closed = False  # this side sent FIN

    async def read(self) -> bytes:
        """The next data the client sent; b"" once it closed its side."""
        data = await self._inbox.get()
        if data:
            await self.session.window_update(self.id, len(data))
        return data

    async def write(self, data: bytes) -> None:
        for start in range(0, len(data), MAX_DATA):
            await self.session.send_data(self, data[start:start + MAX_DATA])

    async def close(self) -> None:
        """Half-close: tell the client this side sends nothing more."""
        if not self.local_closed:
            self.local_closed = True
            self._forget_if_done()
            await self.session.send_data(self, b"", FLAG_FIN)

    def _received(self, data: bytes, fin: bool) -> None:
        if self.remote_closed:
            return
        if data:
            self._inbox.put_nowait(data)
        if fin:
            self._end()

    def _end(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._inbox.put_nowait(b"")
        self._forget_if_done()

    def _forget_if_done(self) -> None:
        """Closed both ways: a long session (a port-forward) keeps no record of it."""
        if self.remote_closed and self.local_closed:
            self.session.streams.pop(self.id, None)


class Session:
    """The server end of one SPDY session. ``on_stream`` gets each stream the client opens
    and says whether it takes it; a stream it does not take is reset (REFUSED_STREAM)."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], on_stream: Callable[[Stream], bool]) -> None:
        self._send = send
        self._on_stream = on_stream
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._lock = asyncio.Lock()  # one frame at a time; header blocks compress in send order
        self.streams: dict[int, Stream] = {}
        self.closed = False

    async def feed(self, data: bytes) -> None:
        """Handle what arrived: any number of frames, the last one possibly incomplete."""
        self._buffer += data
        while len(self._buffer) >= 8:
            (length,) = struct.unpack_from(">I", self._buffer, 4)
            length &= 0xFFFFFF
            if len(self._buffer) < 8 + length:
                return
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = head[4]
            if head[0] & 0x80:
                version, kind = struct.unpack_from(">HH", head)
                if version & 0x7FFF != VERSION:
                    raise SpdyError(f"SPDY version {version & 0x7FFF}, not {VERSION}")
                await self._control(kind, flags, payload)
            else:
                self._data(struct.unpack_from(">I", head)[0] & 0x7FFFFFFF, flags, payload)

    def close(self) -> None:
        """The transport is gone: every stream reads end-of-file."""
        self.closed = True
        for stream in list(self.streams.values()):
            stream._end()

    async def send_data(self, stream: Stream, data: bytes, flags: int = 0) -> None:
        await self._write(data_frame(stream.id, data, flags))

    async def window_update(self, stream_id: int, delta: int) -> None:
        await self._write(control_frame(WINDOW_UPDATE, struct.pack(">II", stream_id, delta)))

    async def reset(self, stream: Stream, status: int = CANCEL) -> None:
        stream.local_closed = True
        stream._end()
        await self._write(_rst_frame(stream.id, status))

    async def _write(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("the SPDY session is closed")
        async with self._lock:
            await self._send(frame)

    async def _control(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == SYN_STREAM:
            await self._syn_stream(flags, payload)
        elif kind == RST_STREAM and len(payload) >= 8:
            stream = self.streams.get(struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF)
            if stream is not None:
                stream.local_closed = True
                stream._end()
        elif kind == PING:
            await self._write(control_frame(PING, payload))
        elif kind == GOAWAY:
            self.close()
        elif kind == HEADERS and len(payload) >= 4:
            self._inflated(payload[4:])  # keeps the zlib stream in step; nothing to act on
        # SETTINGS and WINDOW_UPDATE: this side sends little, in frames of at most 64 KiB

    async def _syn_stream(self, flags: int, payload: bytes) -> None:
        if len(payload) < 10:
            raise SpdyError("short SYN_STREAM")
        stream_id = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
        headers = decode_headers(self._inflated(payload[10:]))
        if stream_id in self.streams or stream_id % 2 == 0:
            await self._write(_rst_frame(stream_id, PROTOCOL_ERROR))
            return
        stream = self.streams[stream_id] = Stream(self, stream_id, headers)
        async with self._lock:  # compress and send together: the zlib stream's order is the wire's
            block = self._deflate.compress(encode_headers({})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            await self._send(control_frame(SYN_REPLY, struct.pack(">I", stream_id) + block))
        if flags & FLAG_FIN:
            stream._end()
        if not self._on_stream(stream):
            await self.reset(stream, REFUSED_STREAM)

    def _inflated(self, block: bytes) -> bytes:
        try:
            return self._inflate.decompress(block)
        except zlib.error as exc:
            raise SpdyError(f"header block: {exc}") from None

    def _data(self, stream_id: int, flags: int, payload: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            stream._received(payload, bool(flags & FLAG_FIN))
