"""The real kubectl reads logs from, execs into and port-forwards to pods a process-runtime
kubelet runs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tinykube.api import pods as podutil
from tinykube.kubelet.runtime.process import can_isolate
from tinykube.testing.kubelet import wait_for_pod

pytestmark = pytest.mark.kubectl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "node"


@pytest.fixture
async def hello(apiserver, kubelet_factory, kubectl):
    await kubelet_factory("node-1")
    await kubectl.run("apply", "-f", str(EXAMPLES / "hello-pod.yaml"))
    async with apiserver.client() as client:  # bind it, as the scheduler would
        await client.resource("pods").create_subresource(
            "hello", "binding", {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "hello"},
                                 "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}},
            namespace="default")
        await wait_for_pod(client, "default", "hello", podutil.is_ready, timeout=30)
    return kubectl


async def test_kubectl_logs(hello):
    async def first_line() -> str:
        while True:
            out = (await hello.run("logs", "hello")).stdout
            if out:
                return out
            await asyncio.sleep(0.1)  # the process has not flushed its first line yet

    out = await asyncio.wait_for(first_line(), 15)
    assert out.startswith("hello from ")
    stamped = await hello.run("logs", "hello", "--timestamps")
    stamp, _, text = stamped.stdout.splitlines()[0].partition(" ")
    assert text.startswith("hello from") and stamp.endswith("Z")
    tail = await hello.run("logs", "hello", "--tail=1")
    assert len(tail.stdout.splitlines()) == 1


async def test_kubectl_exec(hello):
    # kubectl before 1.30 runs exec over SPDY (v4.channel.k8s.io), later ones over WebSocket (v5)
    out = await hello.run("exec", "hello", "--", "cat", "/etc/hostname")
    if can_isolate():
        assert out.stdout == "hello\n"
    failed = await hello.fails("exec", "hello", "--", "sh", "-c", "exit 3")
    assert "command terminated with exit code 3" in failed.stderr
    piped = await hello.run("exec", "-i", "hello", "--", "cat", input="through stdin\n")
    assert piped.stdout == "through stdin\n"


def _get(port: int) -> bytes:
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
        return resp.read()


def _read_until_closed(port: int) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        return sock.recv(100)


async def test_kubectl_port_forward(hello):
    # kubectl before 1.31 upgrades to SPDY; 1.31 and later tunnel SPDY through a WebSocket
    proc = hello.popen("port-forward", "hello", ":8080", ":9")
    try:
        lines = await hello.read_until(proc, lambda line: line.startswith("Forwarding from 127.0.0.1:")
                                       and line.endswith("-> 9"), 20)
        local = {line.rsplit(" -> ", 1)[1]: int(line.split()[2].rsplit(":", 1)[1])
                 for line in lines if line.startswith("Forwarding from 127.0.0.1:")}
        assert await asyncio.to_thread(_get, local["8080"]) == b"ok\n"
        assert await asyncio.to_thread(_get, local["8080"]) == b"ok\n"  # a second connection
        # nothing listens on port 9 in the pod: the connection closes, kubectl says why and stops
        assert await asyncio.to_thread(_read_until_closed, local["9"]) == b""
        await asyncio.to_thread(proc.wait, 15)
        errors = proc.stderr.read()
        assert "error forwarding port 9 to pod default/hello" in errors
        assert "connect: connection refused" in errors
    finally:
        hello.stop(proc)


async def test_kubectl_describe_shows_kubelet_events(hello):
    out = (await hello.run("describe", "pod", "hello")).stdout
    assert "Started container hello" in out
    assert "Created container hello" in out


def run_in_terminal(command: list[str], env: dict[str, str], keys: bytes, timeout: float,
                    prompts: tuple[bytes, ...] = (b"#", b"$")) -> bytes:
    """Run ``command`` on a pseudo-terminal (as a person at a shell would), typing ``keys``
    once one of ``prompts`` appears."""
    import os
    import pty
    import select
    import subprocess
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
                if not sent and any(prompt in output for prompt in prompts):
                    os.write(master, keys)
                    sent = True
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        os.close(master)
    return output


async def test_kubectl_exec_interactive_tty(hello):
    command = hello.command("exec", "-it", "hello", "--", "sh")
    out = await asyncio.to_thread(run_in_terminal, command, hello._env(), b"echo tty=$((6*7))\nexit\n", 30)
    assert b"tty=42" in out


async def test_kubectl_run_attached_and_removed(hello):
    """``kubectl run -i --rm``: a pod whose container keeps stdin (stdinOnce), attached to once
    it runs, deleted when it ends. Its ``-- sh -c ...`` are args only, run as for an image
    without an entrypoint."""
    out = await hello.run("run", "once", "-i", "--rm", "--restart=Never", "--image=busybox",
                          '--overrides={"apiVersion": "v1", "spec": {"nodeName": "node-1"}}',
                          "--", "sh", "-c", "read x; echo got-$x", input="hello\n")
    assert "got-hello" in out.stdout
    assert 'pod "once" deleted' in out.stdout + out.stderr
    assert "once" not in (await hello.run("get", "pods", "-o", "name")).stdout


async def test_kubectl_attach_with_stdin_once(hello, apiserver):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "reader"},
           "spec": {"nodeName": "node-1", "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "reader", "image": "busybox", "stdin": True, "stdinOnce": True,
                                    "command": ["sh", "-c", "while read l; do echo got-$l; done; echo bye"]}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        await wait_for_pod(client, "default", "reader", lambda p: podutil.phase(p) == "Running", timeout=30)
    out = await hello.run("attach", "-i", "reader", input="x\ny\n")
    assert out.stdout.endswith("got-x\ngot-y\nbye\n")  # its stdin closed with kubectl's: the loop ended
    async with apiserver.client() as client:
        done = await wait_for_pod(client, "default", "reader", lambda p: podutil.phase(p) == "Succeeded", timeout=30)
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


async def test_kubectl_attach_to_a_terminal(hello, apiserver):
    """``kubectl attach -it`` to a shell on a TTY: kubectl asks for Enter (the prompt was
    printed before it attached), the keys reach the shell, and its exit ends the session."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tty"},
           "spec": {"nodeName": "node-1", "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "sh", "image": "busybox", "stdin": True, "tty": True,
                                    "command": ["sh"]}]}}
    async with apiserver.client() as client:
        await client.resource("pods").create(pod, namespace="default")
        await wait_for_pod(client, "default", "tty", lambda p: podutil.phase(p) == "Running", timeout=30)
    command = hello.command("attach", "-it", "tty")
    out = await asyncio.to_thread(run_in_terminal, command, hello._env(), b"\necho tty=$((6*7))\nexit 3\n", 30,
                                  prompts=(b"pressing enter",))
    assert b"tty=42" in out
    async with apiserver.client() as client:
        done = await wait_for_pod(client, "default", "tty", lambda p: podutil.phase(p) == "Failed", timeout=30)
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


async def test_kubectl_run_on_a_terminal_and_removed(hello):
    """``kubectl run -it --rm ... -- sh``: a shell on a terminal, deleted once it exits."""
    command = hello.command("run", "it", "-it", "--rm", "--restart=Never", "--image=busybox",
                            '--overrides={"apiVersion": "v1", "spec": {"nodeName": "node-1"}}', "--", "sh")
    out = await asyncio.to_thread(run_in_terminal, command, hello._env(), b"\necho run=$((6*7))\nexit\n", 60,
                                  prompts=(b"pressing enter",))
    assert b"run=42" in out and b'pod "it" deleted' in out
    assert "pod/it" not in (await hello.run("get", "pods", "-o", "name")).stdout.split()


async def test_kubectl_debug_with_an_ephemeral_container(hello, apiserver):
    """``kubectl debug -it`` adds an ephemeral container targeting ``hello`` and attaches to
    it; as root it shares the pod's PID namespace, so it sees hello's server."""
    command = hello.command("debug", "-it", "hello", "--image=busybox", "--target=hello", "--container=dbg",
                            "--", "sh")
    out = await asyncio.to_thread(run_in_terminal, command, hello._env(),
                                  b"\necho dbg=$((6*7)); ps -e -o args\nexit 0\n", 60, prompts=(b"pressing enter",))
    assert b"dbg=42" in out
    if can_isolate():
        assert b"python3 -u -c" in out  # hello's server
    async with apiserver.client() as client:
        pod = await wait_for_pod(client, "default", "hello", lambda p: "terminated" in (
            (p["status"].get("ephemeralContainerStatuses") or [{}])[0].get("state") or {}), timeout=30)
    assert pod["spec"]["ephemeralContainers"][0]["targetContainerName"] == "hello"
    assert pod["status"]["ephemeralContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert podutil.phase(pod) == "Running"  # the pod itself goes on


async def test_kubectl_debug_a_node(hello, apiserver):
    """``kubectl debug node/node-1 -it``: a pod on the node's PID, IPC and network
    namespaces with the node's root at /host (as root: a bind mount in its own mount
    namespace), attached to, then Succeeded."""
    command = hello.command("debug", "node/node-1", "-it", "--image=busybox", "--", "sh")
    keys = f"\necho node=$((6*7)); test -d /host/proc/{os.getpid()} && echo host-pids-at-host-root\nexit 0\n"
    out = await asyncio.to_thread(run_in_terminal, command, hello._env(), keys.encode(), 60,
                                  prompts=(b"pressing enter",))
    assert b"node=42" in out
    if can_isolate():
        assert b"host-pids-at-host-root" in out
    async with apiserver.client() as client:
        listed = await client.resource("pods").list(namespace="default")
        debugger = next(p for p in listed["items"] if p["metadata"]["name"].startswith("node-debugger-node-1-"))
        assert debugger["spec"]["hostPID"] and debugger["spec"]["volumes"][0]["hostPath"]["path"] == "/"
        done = await wait_for_pod(client, "default", debugger["metadata"]["name"],
                                  lambda p: podutil.phase(p) == "Succeeded", timeout=30)
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


async def test_kubectl_top(hello):
    """``kubectl top`` reads metrics.k8s.io: the node's and the pod's CPU and memory."""
    node = (await hello.run("top", "node", "node-1")).stdout.splitlines()
    assert node[0].split()[:2] == ["NAME", "CPU(cores)"]
    name, cpu, cpu_percent, memory, _ = node[1].split()
    assert name == "node-1" and cpu.endswith("m") and cpu_percent.endswith("%") and memory.endswith("Mi")
    pod = (await hello.run("top", "pod", "hello", "--containers")).stdout.splitlines()
    assert pod[0].split() == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    pod_name, container, cpu, memory = pod[1].split()
    assert (pod_name, container) == ("hello", "hello") and cpu.endswith("m") and memory.endswith("Mi")
    assert int(memory.removesuffix("Mi")) > 0  # a Python server holds some memory


async def test_kubectl_logs_follow(hello):
    proc = hello.popen("logs", "-f", "hello")
    try:
        lines = await hello.read_until(proc, lambda line: line.startswith("hello from"), 20)
        assert lines[0].startswith("hello from")
    finally:
        hello.stop(proc)
