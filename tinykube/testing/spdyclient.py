"""The client end of a SPDY/3.1 session, as kubectl's port-forward drives one, for tests."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tinykube.kubelet import spdy

T = TypeVar("T")


@dataclass
class Frame:
    kind: int  # a control frame's type, or 0 for DATA
    stream: int
    flags: int
    payload: bytes
    headers: dict[str, str] | None = None


class Client:
    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=spdy.DICTIONARY)
        self.received = bytearray()  # what the server sent, not yet parsed
        self.log: list[Frame] = []  # every frame parsed so far
        self._arrived = asyncio.Event()  # set by each write of the server's

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        block = self._deflate.compress(spdy.encode_headers(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        payload = struct.pack(">IIH", stream_id, 0, 0) + block
        return spdy.control_frame(spdy.SYN_STREAM, payload, spdy.FLAG_FIN if fin else 0)

    async def send(self, data: bytes) -> None:
        """The session's ``send``: collects what the server writes."""
        self.received += data
        self._arrived.set()

    def frames(self) -> list[Frame]:
        """Every complete frame the server sent since the last call."""
        out = []
        while len(self.received) >= 8:
            length = struct.unpack_from(">I", self.received, 4)[0] & 0xFFFFFF
            head, payload = bytes(self.received[:8]), bytes(self.received[8:8 + length])
            del self.received[:8 + length]
            if head[0] & 0x80:
                kind = struct.unpack_from(">H", head, 2)[0]
                stream = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
                frame = Frame(kind, stream, head[4], payload)
                if kind == spdy.SYN_REPLY:
                    frame.headers = spdy.decode_headers(self._inflate.decompress(payload[4:]))
            else:
                frame = Frame(0, struct.unpack_from(">I", head)[0], head[4], payload)
            out.append(frame)
        self.log += out
        return out

    def stream_data(self, stream_id: int) -> tuple[bytes, bool]:
        """All the DATA the server sent on a stream so far, and whether it ended with FIN."""
        self.frames()
        data = [f for f in self.log if f.kind == 0 and f.stream == stream_id]
        return b"".join(f.payload for f in data), any(f.flags & spdy.FLAG_FIN for f in data)

    async def until(self, check: Callable[[], T | None], timeout: float = 5) -> T:
        """Wait, frame by frame, until ``check()`` (run on what arrived) returns a result."""
        async with asyncio.timeout(timeout):
            while True:
                self._arrived.clear()
                self.frames()
                result = check()
                if result is not None:
                    return result
                await self._arrived.wait()

    async def until_fin(self, stream_id: int, timeout: float = 5) -> bytes:
        """The stream's DATA once the server has ended its side of it with FIN."""
        def ended() -> bytes | None:
            data, fin = self.stream_data(stream_id)
            return data if fin else None
        return await self.until(ended, timeout)
