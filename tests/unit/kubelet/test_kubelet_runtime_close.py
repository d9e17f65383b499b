"""Once the process runtime closes, nothing starts again: no fork server, no sandbox."""

import asyncio

import pytest

from tinykube.kubelet.runtime.interface import CRIError, PodSandboxConfig
from tinykube.kubelet.runtime.process import ProcessRuntime
from tinykube.kubelet.runtime.zygote import Zygote, ZygoteClosedError


async def test_closed_zygote_refuses_to_start_a_fork_server():
    zygote = Zygote()
    await zygote.start()
    assert zygote.proc is not None and zygote.proc.returncode is None
    proc = zygote.proc
    await zygote.close()
    assert proc.returncode is not None and zygote.proc is None
    with pytest.raises(ZygoteClosedError):
        await zygote.spawn({"mode": "sandbox"})
    with pytest.raises(ZygoteClosedError):
        await zygote.start()
    assert zygote.proc is None and zygote.sock is None


async def test_zygote_start_racing_close_leaves_no_fork_server():
    zygote = Zygote()
    starting = asyncio.ensure_future(zygote.start())
    await asyncio.sleep(0)  # the start holds the lock and is starting the interpreter
    await zygote.close()
    try:
        await starting
    except ZygoteClosedError:
        pass
    assert zygote.proc is None and zygote.sock is None


def _config(name: str) -> PodSandboxConfig:
    return PodSandboxConfig(name=name, namespace="default", uid=f"uid-{name}")


async def test_runtime_refuses_sandboxes_once_closing(tmp_path):
    runtime = ProcessRuntime(str(tmp_path), isolate=False)
    in_flight = asyncio.ensure_future(runtime.run_pod_sandbox(_config("early")))
    await asyncio.sleep(0)  # its file work is on an I/O thread
    await runtime.close()
    # the start in flight finished before close() removed everything
    try:
        await in_flight
    except CRIError:
        pass
    assert runtime.sandboxes == {}
    with pytest.raises(CRIError, match="shutting down") as err:
        await runtime.run_pod_sandbox(_config("late"))
    assert err.value.reason == "FailedCreatePodSandBox"
    assert runtime.sandboxes == {}
    assert runtime.zygote.closed and runtime.zygote.proc is None
