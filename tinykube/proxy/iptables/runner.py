"""Running iptables: restore, save, and ensuring the jumps from the built-in chains.

Every call waits for the xtables lock (`-w`), as kube-proxy does, so tinykube can share a
host with other rule writers. `open_restore` starts an `iptables-restore` whose input is
written block by block (`RestoreStream`): the restore parses and commits each COMMIT
block as it arrives, in its own process, while the caller computes the next one.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass

from tinykube.proxy.stream import InputStream

log = logging.getLogger(__name__)


class IptablesError(RuntimeError):
    """An iptables command failed; carries its stderr."""


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


async def run(argv: list[str], stdin: str | None = None) -> CommandResult:
    """Run one command to completion and capture its output."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return CommandResult(proc.returncode or 0, out.decode(), err.decode())


class RestoreStream(InputStream):
    """One running `iptables-restore --noflush`: `write` blocks into it, then `close`."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        super().__init__(proc, lambda err: IptablesError(f"{name} failed: {err}"))


class Iptables:
    """The iptables binaries of one address family (IPv4 only for now)."""

    def __init__(self, binary: str = "iptables", netns: str | None = None) -> None:
        self.binary = binary
        self._prefix = ["ip", "netns", "exec", netns] if netns else []
        self._multi_commit: bool | None = None

    @staticmethod
    def available(binary: str = "iptables") -> bool:
        return shutil.which(binary) is not None and shutil.which(f"{binary}-restore") is not None

    def _argv(self, tool: str, *args: str) -> list[str]:
        return [*self._prefix, tool, *args]

    async def restore(self, text: str) -> None:
        """Apply restore text atomically without flushing chains it does not name."""
        result = await run(self._argv(f"{self.binary}-restore", "-w", "--noflush"), stdin=text)
        if result.returncode != 0:
            raise IptablesError(f"{self.binary}-restore failed: {result.stderr.strip()}")

    async def open_restore(self) -> RestoreStream:
        """Start `iptables-restore -w --noflush` reading blocks from a `RestoreStream`."""
        tool = f"{self.binary}-restore"
        proc = await asyncio.create_subprocess_exec(
            *self._argv(tool, "-w", "--noflush"),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        return RestoreStream(proc, tool)

    async def multi_commit(self) -> bool:
        """Whether a large restore should be staged over many COMMITs: yes for the
        nf_tables backend (see `restore`), no for iptables-legacy, whose every COMMIT
        rewrites the whole table. Asked once (`iptables --version`)."""
        if self._multi_commit is None:
            result = await run(self._argv(self.binary, "--version"))
            self._multi_commit = "legacy" not in result.stdout
        return self._multi_commit

    async def save(self, table: str) -> str:
        result = await run(self._argv(f"{self.binary}-save", "-t", table))
        if result.returncode != 0:
            raise IptablesError(f"{self.binary}-save -t {table} failed: {result.stderr.strip()}")
        return result.stdout

    async def chain_exists(self, table: str, chain: str) -> bool:
        return (await run(self._argv(self.binary, "-w", "-t", table, "-n", "-L", chain))).returncode == 0

    async def _rule(self, op: str, table: str, chain: str, args: list[str]) -> CommandResult:
        return await run(self._argv(self.binary, "-w", "-t", table, op, chain, *args))

    async def ensure_rule(self, table: str, chain: str, args: list[str]) -> bool:
        """Insert a rule at the top of a built-in chain unless present; True if inserted."""
        if (await self._rule("-C", table, chain, args)).returncode == 0:
            return False
        result = await self._rule("-I", table, chain, args)
        if result.returncode != 0:
            raise IptablesError(f"cannot insert into {table}/{chain}: {result.stderr.strip()}")
        return True

    async def delete_rule(self, table: str, chain: str, args: list[str]) -> bool:
        """Delete every copy of a rule; True if one existed."""
        found = False
        while (await self._rule("-C", table, chain, args)).returncode == 0:
            result = await self._rule("-D", table, chain, args)
            if result.returncode != 0:
                raise IptablesError(f"cannot delete from {table}/{chain}: {result.stderr.strip()}")
            found = True
        return found
