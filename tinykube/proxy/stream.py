"""A rule-loading process fed on stdin while the proxier computes (`iptables-restore`,
`nft -f -`): both proxiers stream a full sync into one so parsing overlaps computing."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Protocol


class InputStream:
    """One running loader: `write` text into it, then `close` (raises `error(stderr)` if
    it failed) or `abort` (kills it before it commits what it has not committed yet)."""

    def __init__(self, proc: asyncio.subprocess.Process, error: Callable[[str], Exception]) -> None:
        self._proc = proc
        self._error = error
        assert proc.stderr is not None
        self._stderr = asyncio.ensure_future(proc.stderr.read())
        self._broken = False
        self.bytes_written = 0

    async def write(self, text: str) -> None:
        """Queue `text`; waits while the pipe is full. After the loader died this does
        nothing (`close` reports its error)."""
        if self._broken:
            return
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(text.encode())
            self.bytes_written += len(text)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self._broken = True

    @property
    def failed(self) -> bool:
        """The loader stopped reading (it exited, normally on an error)."""
        return self._broken or self._proc.returncode is not None

    async def close(self) -> None:
        """End the input and wait for the loader to finish."""
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.close()
            await stdin.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass
        code = await self._proc.wait()
        err = (await self._stderr).decode().strip()
        if code != 0:
            raise self._error(err)

    async def abort(self) -> None:
        if self._proc.returncode is None:
            self._proc.kill()
        await self._proc.wait()
        await self._stderr


class Loader(Protocol):
    """What `Lanes` needs of a loader: `InputStream`, or a test double of it."""

    @property
    def failed(self) -> bool: ...

    async def write(self, text: str) -> None: ...

    async def close(self) -> None: ...

    async def abort(self) -> None: ...


class Lanes:
    """Blocks that do not depend on each other, spread over `count` loaders in turn, so
    that the loaders' own parsing and committing runs on every core.

    `write` goes to the first loader, which is open from the start; `spread` hands the
    independent blocks out round robin, opening the other loaders when first needed;
    `join` waits until every other loader has committed all it was given, so that what
    is written to the first one after it sees all of it.
    """

    def __init__(self, first: Loader, open_more: Callable[[], Awaitable[Loader]], count: int) -> None:
        self.first = first
        self._open_more = open_more
        self._count = max(1, count)
        self._others: list[Loader] = []
        self._turn = 0

    @property
    def failed(self) -> bool:
        return bool(self.first.failed) or any(lane.failed for lane in self._others)

    async def write(self, text: str) -> None:
        await self.first.write(text)

    async def spread(self, text: str) -> None:
        self._turn = (self._turn + 1) % self._count
        if self._turn == 0:
            await self.first.write(text)
            return
        if len(self._others) < self._turn:
            self._others.append(await self._open_more())
        await self._others[self._turn - 1].write(text)

    async def join(self) -> None:
        """Close every loader but the first (raising the first error after closing all)."""
        self._turn = 0
        error: Exception | None = None
        while self._others:
            lane = self._others[0]
            try:
                await lane.close()
            except Exception as exc:  # the loader's own error (IptablesError, ...)
                error = error or exc
            self._others.pop(0)  # kept until closed, so that abort() still reaches it
        if error is not None:
            raise error

    async def close(self) -> None:
        try:
            await self.join()
        except BaseException:
            await self.first.abort()
            raise
        await self.first.close()

    async def abort(self) -> None:
        for lane in [*self._others, self.first]:
            await lane.abort()
        self._others = []
