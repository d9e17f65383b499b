"""What an exec reports, and exec over SPDY (remotecommand ``v4.channel.k8s.io``).

kubectl before 1.30 runs exec over SPDY: one stream per channel (``error``, and
``stdin``, ``stdout``, ``stderr``, ``resize`` as the request asks), each opened by the
client with a ``streamType`` header. Once all of them are open the command starts; its
output goes to ``stdout`` (everything, with a TTY) and ``stderr``, the client's FIN on
``stdin`` closes the command's stdin, ``resize`` carries one JSON terminal size after
another, and the exit is reported on ``error`` as a Status (v4) before every stream ends.
The API server relays such a session to the kubelet as raw bytes in a WebSocket whose
subprotocol, ``SPDY/3.1+v4.channel.k8s.io``, is tinykube's own (upstream's API server
proxies the SPDY upgrade itself).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tinykube.kubelet.runtime.interface import CRIError
from tinykube.kubelet.spdy import Stream

log = logging.getLogger(__name__)

SPDY_TUNNEL = "SPDY/3.1+v4.channel.k8s.io"
STREAM_CREATION_TIMEOUT = 30.0  # seconds for the client to open every stream (upstream's default)


def exit_status(code: int, command: list[str]) -> dict:
    """The Status a finished exec reports on its error channel (upstream's remotecommand)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command "
                       f"[{' '.join(command)}], exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


async def final_status(session: Any, command: list[str]) -> dict:
    """How a session's output ended: its command's exit, or the runtime's error."""
    try:
        return exit_status(await session.wait(), command)
    except CRIError as exc:
        return error_status(exc.message)


def error_status(message: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "code": 500}


def expected_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> frozenset[str]:
    """The streams a client opens for these options; with a TTY stderr is merged into stdout."""
    asked = {"error": True, "stdin": stdin, "stdout": stdout, "stderr": stderr and not tty, "resize": tty}
    return frozenset(kind for kind, wanted in asked.items() if wanted)


class ExecStreams:
    """Collects a session's streams by type until every expected one is open."""

    def __init__(self, expected: frozenset[str]) -> None:
        self.expected = expected
        self.streams: dict[str, Stream] = {}
        self.complete = asyncio.Event()

    def on_stream(self, stream: Stream) -> bool:
        """Take one stream of each expected type; the session refuses the others."""
        kind = stream.headers.get("streamtype", "")
        if kind not in self.expected or kind in self.streams:
            return False
        self.streams[kind] = stream
        if len(self.streams) == len(self.expected):
            self.complete.set()
        return True


async def run_exec(streams: dict[str, Stream], start: Callable[[], Awaitable[Any]],
                   command: list[str], refusal: str | None = None) -> None:
    """Run the command between the streams and report how it ended on ``error``."""
    if refusal is not None:
        await _finish(streams, error_status(refusal))
        return
    try:
        session = await start()
    except CRIError as exc:
        await _finish(streams, error_status(exc.message))
        return
    pumps = [asyncio.create_task(coro) for coro in (_stdin(streams.get("stdin"), session),
                                                      _resize(streams.get("resize"), session))]
    try:
        async for channel, data in session.output():
            sink = streams.get("stderr" if channel == 2 else "stdout")
            if sink is not None:
                await sink.write(data)
        await _finish(streams, await final_status(session, command))
    except ConnectionError as exc:  # the client went away: an exec's command must not outlive it
        log.debug("stream over SPDY ended early: %s", exc)
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await session.end()


async def _finish(streams: dict[str, Stream], status: dict) -> None:
    """End the output streams, then report ``status`` and end the error stream."""
    for kind in ("stdout", "stderr"):
        if kind in streams:
            await streams[kind].close()
    await streams["error"].write(json.dumps(status).encode())
    await streams["error"].close()


async def _stdin(stream: Stream | None, session: Any) -> None:
    if stream is None:
        return
    while data := await stream.read():
        await session.write_stdin(data)
    await session.close_stdin()


async def _resize(stream: Stream | None, session: Any) -> None:
    """Terminal sizes, one JSON object after another with no separator required."""
    if stream is None:
        return
    decoder, pending = json.JSONDecoder(), ""
    while data := await stream.read():
        pending += data.decode("utf-8", "replace")
        while pending.strip():
            try:
                size, end = decoder.raw_decode(pending.lstrip())
            except ValueError:
                break  # an object split across frames: wait for the rest
            pending = pending.lstrip()[end:]
            try:
                await session.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
            except (TypeError, ValueError, AttributeError):
                log.debug("bad resize message %r", size)
