"""A rule-loading process fed on stdin while the proxier computes (`iptables-restore`,
`nft -f -`): both proxiers stream a full sync into one so parsing overlaps computing."""

from __future__ import annotations

import asyncio
from typing import Callable


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
