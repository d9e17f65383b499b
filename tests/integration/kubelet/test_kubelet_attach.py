"""Attaching to containers of the process runtime: stdin through the attach channel, a
terminal, and the log for a container with neither."""

from __future__ import annotations

import asyncio
import os

import pytest

from tinykube.kubelet import remotecommand
from tinykube.kubelet.runtime.attach import MAX_BEHIND
from tinykube.kubelet.runtime.interface import ContainerConfig, ContainerState, PodSandboxConfig
from tinykube.kubelet.runtime.process import ProcessRuntime, can_isolate
from tinykube.testing.kubelet import logged_line, private_network, release_network


@pytest.fixture(params=["plain", "isolated"])
async def runtime(request, tmp_path):
    if request.param == "isolated" and not can_isolate():
        pytest.skip("needs root on Linux")
    net = private_network()
    rt = ProcessRuntime(str(tmp_path / "rt"), pod_cidr=net["pod_cidr"], bridge=net["bridge"],
                        cgroup_parent=f"tinykube-test/{net['bridge']}", isolate=request.param == "isolated",
                        service_cidr=net["service_cidr"])
    yield rt
    await rt.close()
    if rt.isolate:
        from tinykube.kubelet.runtime.network import remove_bridge

        await remove_bridge(rt.network.bridge)
        rt.cgroups.remove("")
    release_network(net)


async def start(rt: ProcessRuntime, tmp_path, command: list[str], **kw) -> str:
    cfg = PodSandboxConfig(name="att", namespace="default", uid="uid-att", log_directory=str(tmp_path / "logs"),
                           host_network=True)
    sid = await rt.run_pod_sandbox(cfg)
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox", args=command,
                                                         log_path="c/0.log", **kw), cfg)
    await rt.start_container(cid)
    return cid


class Output:
    """Everything an attached session receives, by stream, as it arrives."""

    def __init__(self, session) -> None:
        self.streams = {1: b"", 2: b""}
        self.changed = asyncio.Condition()
        self.task = asyncio.create_task(self._collect(session))

    async def _collect(self, session) -> None:
        async for stream, data in session.output():
            async with self.changed:
                self.streams[stream] += data
                self.changed.notify_all()

    async def has(self, marker: bytes, stream: int = 1) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: marker in self.streams[stream]), 10)

    async def ended(self) -> dict[int, bytes]:
        await asyncio.wait_for(self.task, 10)
        return self.streams


async def test_stdin_reaches_the_container_and_stdin_once_closes_it(runtime, tmp_path):
    """Two clients see the same output, apart by stream; the first one's stdin is the
    container's, and when it leaves (stdinOnce) the container reads end of file."""
    cid = await start(runtime, tmp_path, ["sh", "-c", "while read line; do echo got-$line; echo err-$line >&2; done;"
                                                      " echo bye"], stdin=True, stdin_once=True)
    first = await runtime.attach(cid, stdin=True)
    watcher = await runtime.attach(cid, stdin=False)
    first_out, watched = Output(first), Output(watcher)
    await first.write_stdin(b"a\n")
    await first_out.has(b"got-a\n")
    await watcher.write_stdin(b"ignored\n")  # a client without stdin writes nowhere
    await first.write_stdin(b"b\n")
    await watched.has(b"err-b\n", stream=2)
    await first.end()  # stdinOnce: the container's stdin closes as its first client leaves
    assert await watched.ended() == {1: b"got-a\ngot-b\nbye\n", 2: b"err-a\nerr-b\n"}
    status = await asyncio.wait_for(runtime.wait_container(cid), 10)
    assert status.state == ContainerState.CONTAINER_EXITED and status.exit_code == 0
    assert await watcher.wait() == 0
    with open(status.log_path, "rb") as f:
        log = f.read()
    assert b"stdout F got-a" in log and b"stderr F err-b" in log and b"stdout F bye" in log
    assert b"ignored" not in log


async def test_without_stdin_once_the_next_client_gets_stdin(runtime, tmp_path):
    cid = await start(runtime, tmp_path, ["sh", "-c", "while read line; do echo got-$line; done"], stdin=True)
    first = await runtime.attach(cid, stdin=True)
    out = Output(first)
    await first.write_stdin(b"one\n")
    await out.has(b"got-one")
    await first.close_stdin()
    await first.end()
    second = await runtime.attach(cid, stdin=True)
    out = Output(second)
    await second.write_stdin(b"two\n")
    await out.has(b"got-two")
    assert (await runtime.container_status(cid)).state == ContainerState.CONTAINER_RUNNING
    await second.end()


async def test_a_terminal_takes_keys_and_sizes(runtime, tmp_path):
    """A TTY container's stdin, stdout and stderr are one terminal: what is typed is echoed,
    a resize reaches it, stderr arrives as stdout, and closing stdin is ^D."""
    cid = await start(runtime, tmp_path, ["sh", "-c", "read x; stty size; echo x=$x >&2; cat; echo done"],
                      stdin=True, stdin_once=True, tty=True)
    session = await runtime.attach(cid, stdin=True)
    out = Output(session)
    await session.resize(100, 40)
    await session.write_stdin(b"hi\n")
    await out.has(b"x=hi")
    await session.close_stdin()  # cat reads end of file
    streams = await out.ended()
    assert streams[2] == b""
    assert b"hi\r\n" in streams[1] and b"40 100\r\n" in streams[1] and b"x=hi\r\ndone\r\n" in streams[1]
    assert (await asyncio.wait_for(runtime.wait_container(cid), 10)).exit_code == 0


async def test_a_client_too_far_behind_is_detached_and_told(runtime, tmp_path):
    """A client that stops reading is detached once it is MAX_BEHIND bytes behind; one that
    reads gets every byte, and the container and its log are unaffected."""
    size = MAX_BEHIND + (4 << 20)
    fifo = str(tmp_path / "go")
    os.mkfifo(fifo)
    cid = await start(runtime, tmp_path, ["sh", "-c", f"cat {fifo} >/dev/null; head -c {size} /dev/zero"],
                      stdin=True)
    stalled = await runtime.attach(cid, stdin=False)
    reader = await runtime.attach(cid, stdin=False)
    received = 0

    async def read() -> None:
        nonlocal received
        async for _, data in reader.output():
            received += len(data)

    reading = asyncio.create_task(read())
    await asyncio.to_thread(_write, fifo, b"go\n")
    await asyncio.wait_for(reading, 30)
    assert received == size and await reader.wait() == 0
    assert [item async for item in stalled.output()] == []  # what it had not read went with it
    status = await remotecommand.final_status(stalled, [])
    assert status["status"] == "Failure" and "fell more than 8 MiB behind" in status["message"]
    assert (await asyncio.wait_for(runtime.wait_container(cid), 10)).exit_code == 0


async def test_a_container_without_stdin_is_attached_through_its_log(runtime, tmp_path):
    """Only what it writes from the attach on arrives (a FIFO holds it back until then)."""
    fifo = str(tmp_path / "go")
    os.mkfifo(fifo)
    cid = await start(runtime, tmp_path, ["sh", "-c", f"echo early; cat {fifo}; echo one; echo two >&2"])
    log_path = (await runtime.container_status(cid)).log_path
    await logged_line(log_path, lambda line: line == b"early")
    session = await runtime.attach(cid, stdin=True)
    out = Output(session)
    await session.write_stdin(b"nowhere\n")
    await asyncio.to_thread(_write, fifo, b"go\n")
    assert await out.ended() == {1: b"go\none\n", 2: b"two\n"}
    assert await session.wait() == 0


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
