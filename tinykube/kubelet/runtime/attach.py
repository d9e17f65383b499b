"""Attaching to a running container (CRI Attach): its output from now on, and its stdin.

A container that asked for stdin or a TTY runs under a shim of its own holding the other
end of an attach channel (a SOCK_SEQPACKET socket, see ``shim.Attach``): ``AttachChannel``
keeps the runtime's end for the container's lifetime and hands each message of output to
every attached client. Clients come and go; with ``stdinOnce`` the container's stdin is
closed once the first client that wrote to it leaves, as upstream's runtimes do. A
container without either is attached to through its log: ``LogAttach`` follows it from
its current end.

A client that reads slower than the container writes cannot hold the container back (its
output is logged whatever the clients do), so a session that falls more than ``MAX_BEHIND``
bytes behind is detached with an error rather than buffered without bound. A client of
``LogAttach`` just reads the log more slowly.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import AsyncIterator

from tinykube.kubelet.runtime.interface import CRIError
from tinykube.kubelet.runtime.logs import end_offset, follow_records, render

log = logging.getLogger(__name__)

STDIN, CLOSE_STDIN, RESIZE = b"\x00", b"\x01", b"\x02"
MAX_MESSAGE = 65536 + 16  # the shim sends at most 64 KiB of output in one message
MAX_BEHIND = 8 << 20  # output a client may have still to read before it is detached
LOG_QUEUE = 64  # records read ahead of a client attached through the log


class AttachChannel:
    """The runtime's end of one container's attach channel."""

    def __init__(self, sock: socket.socket, stdin_once: bool) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.stdin_once = stdin_once
        self.sessions: set[AttachSession] = set()
        self.ended = False  # the container's output ended (or the channel broke)
        self.stdin_closed = False
        self._reader = asyncio.create_task(self._read(), name="attach-channel")

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while message := await loop.sock_recv(self.sock, MAX_MESSAGE):
                stream, data = message[0], message[1:]
                for session in list(self.sessions):
                    session.deliver(stream, data)
        except OSError as exc:
            log.debug("attach channel ended: %s", exc)
        finally:
            self.ended = True
            for session in self.sessions:
                session.queue.put_nowait(None)

    def session(self, stdin: bool) -> "AttachSession":
        session = AttachSession(self, stdin)
        if self.ended:
            session.queue.put_nowait(None)
        else:
            self.sessions.add(session)
        return session

    def detach(self, session: "AttachSession") -> None:
        self.sessions.discard(session)

    async def send(self, message: bytes) -> None:
        if self.ended or (message[:1] != RESIZE and self.stdin_closed):
            return
        if message[:1] == CLOSE_STDIN:
            self.stdin_closed = True
        try:
            await asyncio.get_running_loop().sock_sendall(self.sock, message)
        except OSError as exc:
            log.debug("attach channel: %s", exc)

    def close(self) -> None:
        self._reader.cancel()
        self.sock.close()


class AttachSession:
    """One client attached through an ``AttachChannel``: the runtime's ExecSession for attach."""

    def __init__(self, channel: AttachChannel, stdin: bool) -> None:
        self.channel = channel
        self.stdin = stdin
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self.behind = 0  # bytes queued for the client and not yet taken
        self.fell_behind = False

    def deliver(self, stream: int, data: bytes) -> None:
        """Queue one message of output, or detach a client too far behind to take it."""
        if self.behind + len(data) > MAX_BEHIND:
            log.info("attach: a client fell %d bytes behind the container's output: detached",
                     self.behind)
            self.fell_behind = True
            self.channel.detach(self)
            while not self.queue.empty():  # what it has not read is dropped with it
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return
        self.behind += len(data)
        self.queue.put_nowait((stream, data))

    async def write_stdin(self, data: bytes) -> None:
        if self.stdin and data:
            await self.channel.send(STDIN + data)

    async def close_stdin(self) -> None:
        """The client's stdin ended: the container's too with ``stdinOnce``, else it stays
        open for the next client."""
        if self.stdin and self.channel.stdin_once:
            await self.channel.send(CLOSE_STDIN)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (item := await self.queue.get()) is not None:
            self.behind -= len(item[1])
            yield item

    async def resize(self, width: int, height: int) -> None:
        await self.channel.send(RESIZE + f"{width} {height}".encode())

    async def wait(self) -> int:
        """Success once the container's output ends, unless the client was detached."""
        if self.fell_behind:
            raise CRIError("AttachError", f"detached: this client fell more than {MAX_BEHIND >> 20} MiB "
                                          "behind the container's output")
        return 0

    async def end(self) -> None:
        """The client left: the container runs on (its stdin closed with ``stdinOnce``)."""
        self.channel.detach(self)
        await self.close_stdin()


class LogAttach:
    """Attached to a container without stdin or TTY: its log from the current end, until it
    exits; stdin and resizes go nowhere, as the container has neither."""

    def __init__(self, log_path: str, exited: asyncio.Event) -> None:
        self.queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(LOG_QUEUE)
        self._task = asyncio.create_task(self._follow(log_path, end_offset(log_path), exited))

    async def _follow(self, path: str, offset: int, exited: asyncio.Event) -> None:
        try:
            async for rec in follow_records(path, offset, exited):
                await self.queue.put((2 if rec.stream == "stderr" else 1, render(rec, timestamps=False)))
        except OSError as exc:
            log.debug("attach: following %s: %s", path, exc)
        await self.queue.put(None)

    async def write_stdin(self, data: bytes) -> None:
        pass

    async def close_stdin(self) -> None:
        pass

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def resize(self, width: int, height: int) -> None:
        pass

    async def wait(self) -> int:
        return 0

    async def end(self) -> None:
        self._task.cancel()
