"""A streaming exec on a local process: pipes, or a pseudo-terminal when a TTY is asked for."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import struct
import termios
from typing import AsyncIterator, Awaitable, Callable

Starter = Callable[..., Awaitable[asyncio.subprocess.Process]]


class ProcessExec:
    """Implements the runtime's ExecSession for a process started by ``starter(**stdio)``."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None) -> None:
        self.proc = proc
        self.master = master
        self._queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        self._readers: list[asyncio.Task] = []

    @classmethod
    async def start(cls, starter: Starter, *, tty: bool, stdin: bool) -> "ProcessExec":
        if tty:
            master, slave = os.openpty()
            try:
                proc = await starter(stdin=slave, stdout=slave, stderr=slave)
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            session = cls(proc, master)
            asyncio.get_running_loop().add_reader(master, session._on_pty)
            session._readers.append(asyncio.create_task(session._end_pty_when_exited()))
            return session
        proc = await starter(stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                             stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        session = cls(proc, None)
        assert proc.stdout is not None and proc.stderr is not None
        session._readers = [asyncio.create_task(session._pump(1, proc.stdout)),
                            asyncio.create_task(session._pump(2, proc.stderr))]
        session._readers.append(asyncio.create_task(session._finish_after_pumps()))
        return session

    async def _pump(self, stream: int, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            await self._queue.put((stream, data))

    async def _finish_after_pumps(self) -> None:
        await asyncio.gather(*self._readers[:2])
        await self._queue.put(None)

    def _on_pty(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the terminal's other side closed
            data = b""
        if data:
            self._queue.put_nowait((1, data))
        else:
            self._close_pty()

    def _close_pty(self) -> None:
        if self.master is not None:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = None
            self._queue.put_nowait(None)

    async def _end_pty_when_exited(self) -> None:
        await self.proc.wait()
        # drain what is left in the terminal before closing it
        while self.master is not None:
            try:
                data = os.read(self.master, 65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self._queue.put_nowait((1, data))
        self._close_pty()

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            os.set_blocking(self.master, True)
            try:
                os.write(self.master, data)
            finally:
                os.set_blocking(self.master, False)
        elif self.proc.stdin is not None:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            await self.write_stdin(b"\x04")  # EOF on a terminal in canonical mode
        elif self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while (item := await self._queue.get()) is not None:
            yield item

    async def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self.proc.wait()
        for task in self._readers:
            await task
        return code if code >= 0 else 128 - code

    async def end(self) -> None:
        await self.kill()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        await self.proc.wait()
        for task in self._readers:
            task.cancel()
        if self.master is not None:
            self._close_pty()
