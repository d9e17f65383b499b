"""Port forwarding (portforward.k8s.io) over a SPDY session: what ``kubectl port-forward`` asks.

For every connection it accepts locally, kubectl opens two streams carrying the same
``requestID`` and ``port`` headers: an ``error`` stream it only reads, and a ``data``
stream for the bytes. Once both are there the kubelet connects to the port inside the
pod's network namespace and copies both ways; the client's FIN on the data stream becomes
a half-close towards the pod. A failure is written to the error stream, as upstream words
it ("error forwarding port N to pod ..."), and both streams are then closed.
``forward_channels`` serves the same over upstream's WebSocket channel protocol instead,
for clients that speak it (the official Python client).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from tinykube import aio
from tinykube.kubelet.runtime.interface import LoopbackRefused
from tinykube.kubelet.spdy import Stream

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL  # the WebSocket subprotocol kubectl 1.31+ offers
CHANNEL_PROTOCOL = "v4.channel.k8s.io"  # upstream kubelet's WebSocket port-forward (the Python client's)
READ_SIZE = 64 * 1024

Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def parse_port(text: str) -> int | None:
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def connect_error(port: int, pod: str, uid: str, exc: OSError) -> str:
    """Why a forward failed, in upstream's words (and logged)."""
    message = (f"error forwarding port {port} to pod {pod}, uid {uid}: failed to connect to "
               f"localhost:{port} inside the pod's network namespace, IPv4: dial tcp4 "
               f"127.0.0.1:{port}: connect: {_reason(exc)}")
    if isinstance(exc, LoopbackRefused) and exc.ipv6 is not None:
        message += f" IPv6 dial tcp6 [::1]:{port}: connect: {_reason(exc.ipv6)}"
    log.info("%s", message)
    return message


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


class PortForwarder:
    """Pairs a session's streams by request and forwards each pair to the pod."""

    def __init__(self, connect: Connect, pod: str, uid: str) -> None:
        self.connect = connect
        self.pod = pod  # namespace/name, for the error text
        self.uid = uid
        self._pending: dict[str, dict[str, Stream]] = {}
        self._tasks: set[asyncio.Task] = set()

    def on_stream(self, stream: Stream) -> bool:
        """Take a stream with a port and a type of error or data; start the pair's forward."""
        kind = stream.headers.get("streamtype", "")
        request = stream.headers.get("requestid", "")
        port = parse_port(stream.headers.get("port", ""))
        if kind not in ("error", "data") or port is None:
            return False
        pair = self._pending.setdefault(request, {})
        pair[kind] = stream
        if len(pair) == 2:
            del self._pending[request]
            task = asyncio.ensure_future(self._forward(port, pair["data"], pair["error"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def close(self) -> None:
        """The session ended: stop every forward still running."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _forward(self, port: int, data: Stream, error: Stream) -> None:
        try:
            try:
                reader, writer = await self.connect(port)
            except OSError as exc:
                await error.write(connect_error(port, self.pod, self.uid, exc).encode())
                return
            try:
                await _copy_both_ways(data, reader, writer)
            finally:
                writer.close()
        except ConnectionError as exc:  # the session went away under us
            log.debug("port-forward %s:%d ended: %s", self.pod, port, exc)
        finally:
            for stream in (data, error):
                if not stream.session.closed:
                    try:
                        await stream.close()
                    except ConnectionError:
                        pass


async def _copy_both_ways(data: Stream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Client -> pod until the client's FIN (then half-close), pod -> client until the pod's."""

    async def upstream() -> None:
        while chunk := await data.read():
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    to_pod = asyncio.create_task(upstream())
    try:
        while chunk := await reader.read(READ_SIZE):
            await data.write(chunk)
    finally:
        if not to_pod.done():
            to_pod.cancel()
        await asyncio.gather(to_pod, return_exceptions=True)


async def forward_channels(ws: web.WebSocketResponse, ports: list[int], connect: Connect, pod: str,
                           uid: str) -> None:
    """Port-forward as upstream's kubelet serves it over WebSocket (what the official Python
    client speaks): one connection per requested port, its bytes on channel 2i and its error
    on channel 2i+1, each channel opened by a message carrying the port (2 bytes, little
    endian). The WebSocket ends once every connection has, or when the client leaves."""
    for i, port in enumerate(ports):
        for channel in (2 * i, 2 * i + 1):
            await ws.send_bytes(bytes([channel]) + struct.pack("<H", port))
    conns = [asyncio.ensure_future(connect(port)) for port in ports]

    async def from_client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    return
                continue
            index, is_error = divmod(msg.data[0], 2) if msg.data else (len(ports), 1)
            if index >= len(ports) or is_error:
                continue
            try:
                _, writer = await conns[index]
            except OSError:
                continue  # reported on the error channel
            writer.write(msg.data[1:])
            await writer.drain()

    async def from_pod(index: int) -> None:
        try:
            reader, _ = await conns[index]
        except OSError as exc:
            message = connect_error(ports[index], pod, uid, exc)
            await ws.send_bytes(bytes([2 * index + 1]) + message.encode())
            return
        while chunk := await reader.read(READ_SIZE):
            await ws.send_bytes(bytes([2 * index]) + chunk)

    try:
        await aio.first_to_end(from_client(), asyncio.gather(*(from_pod(i) for i in range(len(ports)))))
    finally:
        for conn in conns:
            if conn.done() and not conn.cancelled() and conn.exception() is None:
                conn.result()[1].close()
            else:
                conn.cancel()
