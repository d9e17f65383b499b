"""exec over SPDY (remotecommand v4): streams by type, output, stdin, resize, exit status."""

from __future__ import annotations

import asyncio
import json
import struct
from types import SimpleNamespace

from tinykube.kubelet import spdy
from tinykube.kubelet.remotecommand import ExecStreams, expected_streams, run_exec
from tinykube.kubelet.runtime.interface import CRIError
from tinykube.testing.spdyclient import Client


class FakeExec:
    """The runtime's exec session: scripted output, recorded input."""

    def __init__(self, output: list[tuple[int, bytes]], code: int, hold: bool = False) -> None:
        self.proc = SimpleNamespace(returncode=None)
        self._output, self._code, self._hold = output, code, hold
        self.stdin, self.stdin_closed, self.sizes, self.killed = b"", asyncio.Event(), [], False

    async def output(self):
        for item in self._output:
            yield item
        if self._hold:  # a command still running until its stdin closes
            await self.stdin_closed.wait()

    async def write_stdin(self, data: bytes) -> None:
        self.stdin += data

    async def close_stdin(self) -> None:
        self.stdin_closed.set()

    async def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    async def wait(self) -> int:
        self.proc.returncode = self._code
        return self._code

    async def end(self) -> None:
        """As an exec's: the command is killed unless it already ended."""
        if self.proc.returncode is None:
            self.killed = True
            self.proc.returncode = -9


async def open_streams(kinds: list[str], expected: frozenset[str]):
    client = Client()
    streams = ExecStreams(expected)
    session = spdy.Session(client.send, streams.on_stream)
    for i, kind in enumerate(kinds):
        await session.feed(client.syn_stream(2 * i + 1, {"streamType": kind}))
    return client, session, streams


def test_expected_streams_follow_the_request():
    assert expected_streams(stdin=False, stdout=True, stderr=True, tty=False) == {"error", "stdout", "stderr"}
    assert expected_streams(stdin=True, stdout=True, stderr=True, tty=True) == {"error", "stdin", "stdout", "resize"}


async def test_unexpected_and_duplicate_streams_are_refused():
    client, session, streams = await open_streams(["error", "stdin", "error", "stdout"],
                                                  frozenset({"error", "stdout"}))
    assert streams.complete.is_set() and set(streams.streams) == {"error", "stdout"}

    def resets() -> list | None:
        found = [struct.unpack(">II", f.payload) for f in client.log if f.kind == spdy.RST_STREAM]
        return found if len(found) == 2 else None

    # stdin was not asked for; the second error stream is one too many
    assert await client.until(resets) == [(3, spdy.REFUSED_STREAM), (5, spdy.REFUSED_STREAM)]


async def test_output_channels_then_a_v4_exit_status():
    kinds = ["error", "stdout", "stderr"]
    client, session, streams = await open_streams(kinds, frozenset(kinds))
    fake = FakeExec([(1, b"out\n"), (2, b"err\n"), (1, b"more\n")], code=3)

    async def start():
        return fake

    await run_exec(streams.streams, start, ["sh", "-c", "exit 3"])
    assert await client.until_fin(3) == b"out\nmore\n"
    assert await client.until_fin(5) == b"err\n"
    status = json.loads(await client.until_fin(1))
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_stdin_until_fin_and_resizes_split_across_frames():
    kinds = ["error", "stdin", "stdout", "resize"]
    client, session, streams = await open_streams(kinds, frozenset(kinds))
    fake = FakeExec([(1, b"$ ")], code=0, hold=True)

    async def start():
        return fake

    running = asyncio.create_task(run_exec(streams.streams, start, ["sh"]))
    sizes = b'{"Width":100,"Height":40}{"Width":80,' + b'"Height":24}'
    await session.feed(spdy.data_frame(7, sizes[:30]) + spdy.data_frame(7, sizes[30:]))
    await session.feed(spdy.data_frame(3, b"echo hi\n") + spdy.data_frame(3, b"exit\n", spdy.FLAG_FIN))
    await asyncio.wait_for(running, 5)
    assert fake.stdin == b"echo hi\nexit\n" and fake.stdin_closed.is_set()
    assert fake.sizes == [(100, 40), (80, 24)]
    assert json.loads(await client.until_fin(1)) == {"metadata": {}, "status": "Success"}


async def test_a_refusal_or_runtime_error_is_reported_without_running_anything():
    for refusal, error in (("container c is not running", None), (None, CRIError("RunContainerError", "no shim"))):
        client, session, streams = await open_streams(["error", "stdout"], frozenset({"error", "stdout"}))

        async def start():
            raise error

        await run_exec(streams.streams, start, ["ls"], refusal)
        status = json.loads(await client.until_fin(1))
        assert status["status"] == "Failure" and status["message"] == (refusal or "no shim")
        assert await client.until_fin(3) == b""


async def test_the_command_is_killed_when_the_client_goes_away():
    kinds = ["error", "stdin", "stdout"]
    client, session, streams = await open_streams(kinds, frozenset(kinds))
    fake = FakeExec([(1, b"working\n")] * 3, code=0, hold=True)

    async def start():
        return fake

    session.close()  # the connection dropped: writes fail, reads end
    await asyncio.wait_for(run_exec(streams.streams, start, ["sleep", "1000"]), 5)
    assert fake.killed
