"""The process runtime on its own: real processes, namespaces and cgroups, no API server."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import time

import pytest

from tinykube.kubelet.runtime.interface import (
    ContainerConfig, ContainerState, CRIError, LinuxResources, LoopbackRefused, Mount, PodSandboxConfig,
)
from tinykube.kubelet.runtime.network import remove_bridge
from tinykube.kubelet.runtime.process import NO_COMMAND, ProcessRuntime, can_isolate, can_network
from tinykube.testing.kubelet import logged_line, private_network, release_network

needs_root = pytest.mark.skipif(not can_isolate(), reason="needs root on Linux")
needs_network = pytest.mark.skipif(not can_network(), reason="pod networks need root on Linux and iptables")


@pytest.fixture
async def runtime_factory(tmp_path):
    made = []

    def make(isolate: bool) -> ProcessRuntime:
        net = private_network()
        rt = ProcessRuntime(str(tmp_path / f"rt{len(made)}"), pod_cidr=net["pod_cidr"], bridge=net["bridge"],
                            cgroup_parent=f"tinykube-test/{net['bridge']}", isolate=isolate,
                            service_cidr=net["service_cidr"])
        made.append((rt, net))
        return rt

    yield make
    for rt, net in made:
        await rt.close()
        if rt.isolate:
            await remove_bridge(rt.network.bridge)
            rt.cgroups.remove("")
        release_network(net)


def sandbox(tmp_path, name="pod-a", **kw) -> PodSandboxConfig:
    return PodSandboxConfig(name=name, namespace="default", uid=f"uid-{name}", log_directory=str(tmp_path / "logs"),
                            dns_servers=["10.96.0.10"], dns_searches=["default.svc.cluster.local"],
                            dns_options=["ndots:5"], **kw)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


async def start(rt, sb_cfg, command, **kw):
    sid = await rt.run_pod_sandbox(sb_cfg)
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox", command=command,
                                                         log_path="c/0.log", **kw), sb_cfg)
    await rt.start_container(cid)
    return sid, cid


async def test_container_without_command_is_rejected(runtime_factory, tmp_path):
    rt = runtime_factory(isolate=False)
    cfg = sandbox(tmp_path)
    sid = await rt.run_pod_sandbox(cfg)
    with pytest.raises(CRIError) as err:
        await rt.create_container(sid, ContainerConfig(name="c", image="nginx"), cfg)
    assert err.value.reason == "CreateContainerError" and err.value.message == NO_COMMAND


async def test_exit_code_logs_and_no_orphans_without_isolation(runtime_factory, tmp_path):
    rt = runtime_factory(isolate=False)
    cfg = sandbox(tmp_path)
    sid, cid = await start(rt, cfg, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    status = await asyncio.wait_for(rt.wait_container(cid), 10)
    assert status.state == ContainerState.CONTAINER_EXITED and status.exit_code == 3 and status.reason == "Error"
    with open(status.log_path) as f:
        lines = f.read().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["stdout F out", "stderr F err"]
    # a background child of the container dies with it
    sid2, cid2 = await start(rt, sandbox(tmp_path, "pod-b"), ["sh", "-c", "sleep 300 & echo $! > child; wait"],
                             working_dir=str(tmp_path))
    while not (tmp_path / "child").exists() or not (tmp_path / "child").read_text().strip():
        await asyncio.sleep(0.02)
    child = int((tmp_path / "child").read_text())
    await rt.remove_pod_sandbox(sid2)
    assert not alive(child)


async def assert_missing_binary_fails_to_start(rt, sid: str, cfg: PodSandboxConfig) -> None:
    cid = await rt.create_container(sid, ContainerConfig(name="missing", image="x", log_path="missing/0.log",
                                                         command=["no-such-binary-xyz"]), cfg)
    with pytest.raises(CRIError) as err:
        await rt.start_container(cid)
    assert err.value.reason == "RunContainerError"
    status = await rt.container_status(cid)
    assert status.reason == "StartError" and status.exit_code == 128
    assert 'exec: "no-such-binary-xyz": executable file not found in $PATH' in status.message


async def test_start_error_for_missing_binary(runtime_factory, tmp_path):
    rt = runtime_factory(isolate=False)
    cfg = sandbox(tmp_path)
    await assert_missing_binary_fails_to_start(rt, await rt.run_pod_sandbox(cfg), cfg)


@needs_network
@pytest.mark.root
async def test_pod_namespaces_hostname_dns_and_exec(runtime_factory, tmp_path):
    rt = runtime_factory(isolate=True)
    cfg = sandbox(tmp_path, "web-0")
    sid, cid = await start(rt, cfg, ["sleep", "300"])
    st = await rt.pod_sandbox_status(sid)
    assert st.ip.startswith(rt.network.pod_cidr.rsplit(".", 2)[0])
    res = await rt.exec_sync(cid, ["sh", "-c", "cat /etc/hostname; hostname; cat /etc/resolv.conf; echo $$"], 10)
    out = res.stdout.decode().splitlines()
    assert out[0] == "web-0" and out[1] == "web-0"
    assert "nameserver 10.96.0.10" in out and "options ndots:5" in out
    assert int(out[-1]) > 1  # inside the pod's PID namespace (PID 1 is the pause process)
    session = await rt.exec(cid, ["sh"], tty=True, stdin=True)
    await session.write_stdin(b"echo tty-$((40+2))\nexit 7\n")
    output = b"".join([data async for _stream, data in session.output()])
    assert b"tty-42" in output
    assert await session.wait() == 7


@needs_root
@pytest.mark.root
async def test_without_iptables_pods_keep_their_namespaces_on_the_host_network(runtime_factory, tmp_path,
                                                                               monkeypatch):
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **kw: None if name == "iptables" else which(name, *a, **kw))
    rt = runtime_factory(isolate=True)
    assert rt.no_network.startswith("iptables is not installed")
    cfg = sandbox(tmp_path, "web-0")
    sid, cid = await start(rt, cfg, ["sleep", "300"])
    assert (await rt.pod_sandbox_status(sid)).ip == ""
    assert not os.path.exists(f"/sys/class/net/{rt.network.bridge}")  # no bridge, no guard
    res = await rt.exec_sync(cid, ["sh", "-c", "hostname; readlink /proc/self/ns/net; echo $$"], 10)
    hostname, netns, pid = res.stdout.decode().split()
    assert hostname == "web-0" and netns == os.readlink("/proc/self/ns/net") and int(pid) > 1


@needs_network
@pytest.mark.root
async def test_pod_ip_reachable_from_host_over_bridge(runtime_factory, tmp_path):
    rt = runtime_factory(isolate=True)
    cfg = sandbox(tmp_path, "srv")
    server = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
              "s.bind(('0.0.0.0', 8080)); s.listen()\nwhile True:\n c,_=s.accept(); c.sendall(socket.gethostname().encode()); c.close()")
    sid, cid = await start(rt, cfg, ["python3", "-c", server])
    ip = (await rt.pod_sandbox_status(sid)).ip

    async def fetch() -> bytes:
        while True:
            try:
                reader, writer = await asyncio.open_connection(ip, 8080)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            data = await reader.read()
            writer.close()
            return data

    assert await asyncio.wait_for(fetch(), 10) == b"srv"


@pytest.mark.parametrize("isolate", [False, pytest.param(True, marks=needs_network)])
async def test_port_forward_falls_back_to_ipv6_loopback(runtime_factory, tmp_path, isolate):
    """A server listening on ::1 only is reached, after 127.0.0.1 refuses; a port nothing
    listens on is refused on both."""
    rt = runtime_factory(isolate=isolate)
    server = ("import socket\ns=socket.socket(socket.AF_INET6); s.bind(('::1', 0)); s.listen()\n"
              "print('port', s.getsockname()[1], flush=True)\nc,_=s.accept(); c.sendall(b'over-ipv6'); c.close()")
    sid, cid = await start(rt, sandbox(tmp_path, "six"), ["python3", "-c", server])
    line = await logged_line((await rt.container_status(cid)).log_path, lambda line: line.startswith(b"port "))
    reader, writer = await rt.port_forward(sid, int(line.split()[1]))
    assert await reader.read() == b"over-ipv6"
    writer.close()
    with pytest.raises(LoopbackRefused) as refused:
        await rt.port_forward(sid, 9)
    assert refused.value.ipv4.errno == refused.value.ipv6.errno == errno.ECONNREFUSED


@needs_root
@pytest.mark.root
async def test_host_pid_and_host_ipc_share_the_hosts_namespaces(runtime_factory, tmp_path):
    """hostPID: the container's PID is the host's and it sees the host's processes;
    hostIPC: the host's IPC namespace; the pod's own ones otherwise."""
    rt = runtime_factory(isolate=True)
    show = ["sh", "-c", f"echo $$ $(readlink /proc/self/ns/ipc) $(test -d /proc/{os.getpid()} && echo sees-host)"]
    host_ipc = os.readlink("/proc/self/ns/ipc")
    for shared in (True, False):
        cfg = sandbox(tmp_path, f"host-{str(shared).lower()}", host_pid=shared, host_ipc=shared, host_network=True)
        cfg.log_directory = str(tmp_path / cfg.name)
        _, cid = await start(rt, cfg, show)
        status = await asyncio.wait_for(rt.wait_container(cid), 10)
        line = await logged_line(status.log_path, lambda line: b"ipc:" in line)
        pid, ipc, *seen = line.decode().split()
        if shared:
            assert (int(pid), ipc, seen) == (status.pid, host_ipc, ["sees-host"])
        else:
            assert int(pid) != status.pid and ipc != host_ipc and seen == []


@needs_root
@pytest.mark.root
async def test_memory_limit_oom_kills_and_removal_leaves_nothing(runtime_factory, tmp_path):
    rt = runtime_factory(isolate=True)
    cfg = sandbox(tmp_path, "hog")
    sid, cid = await start(rt, cfg, ["python3", "-c", "x = bytearray(200 * 1024 * 1024)"],
                           resources=LinuxResources(memory_limit_in_bytes=50 * 1024 * 1024))
    status = await asyncio.wait_for(rt.wait_container(cid), 20)
    assert status.exit_code == 137 and status.reason == "OOMKilled"
    c2 = await rt.create_container(sid, ContainerConfig(name="bg", image="x", command=["sh", "-c", "sleep 300 & sleep 300"]), cfg)
    await rt.start_container(c2)
    pod_cgroup = rt.sandboxes[sid].cgroup
    deadline = time.monotonic() + 5  # until sh has forked its background sleep
    while len(pids := rt.cgroups.procs_recursive(pod_cgroup)) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert len(pids) >= 3  # the sandbox (the pod's PID 1), sh and its sleeps
    await rt.remove_pod_sandbox(sid)
    assert not any(alive(p) for p in pids)
    assert not any(os.path.exists(p) for p in rt.cgroups.paths(pod_cgroup))
    assert socket.gethostname() != "hog"


@needs_root
@pytest.mark.root
async def test_mount_points_created_on_the_host_are_removed(runtime_factory, tmp_path):
    import secrets

    rt = runtime_factory(isolate=True)
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "data.txt").write_text("payload")
    target = f"/tmp-tinykube-{secrets.token_hex(4)}/nested/dir"
    cfg = sandbox(tmp_path, "mnt")
    sid = await rt.run_pod_sandbox(cfg)
    cids = []
    for name in ("a", "b"):
        cid = await rt.create_container(sid, ContainerConfig(
            name=name, image="x", command=["sleep", "300"], log_path=f"{name}/0.log",
            mounts=[Mount(container_path=target, host_path=str(volume), readonly=True)]), cfg)
        await rt.start_container(cid)
        cids.append(cid)
    res = await rt.exec_sync(cids[0], ["sh", "-c", f"cat {target}/data.txt; touch {target}/x || echo ro"], 10)
    assert res.stdout == b"payloadro\n"
    assert not os.path.exists(f"{target}/data.txt")  # the bind mount is private to the pod
    await rt.remove_container(cids[0])
    assert os.path.isdir(target)  # still needed by b
    await rt.remove_pod_sandbox(sid)
    assert not os.path.exists(target.split("/nested")[0])


def _ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("PPid:")).split()[1])


def _streams(path: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"stdout": [], "stderr": []}
    with open(path) as f:
        for line in f.read().splitlines():
            _time, stream, tag, text = line.split(" ", 3)
            out[stream].append(f"{tag} {text}")
    return out


@needs_network
@pytest.mark.root
async def test_sandbox_starts_plain_containers_itself(runtime_factory, tmp_path):
    """One process per pod: the sandbox (the pod's PID 1) is the parent of each plain
    container, which still gets its own mount namespace and cgroup, only its own stdio, its
    output logged (a last line without newline too) and its exit code; the runtime knows it
    by its host PID. A background child holding the output pipes does not delay the exit,
    and a container that cannot start leaves the sandbox serving the others."""
    rt = runtime_factory(isolate=True)
    cfg = sandbox(tmp_path, "one")
    sid = await rt.run_pod_sandbox(cfg)
    sb_pid = rt.sandboxes[sid].pid
    long = await rt.create_container(sid, ContainerConfig(name="long", image="x", command=["sleep", "300"],
                                                          log_path="long/0.log"), cfg)
    await rt.start_container(long)
    pid = (await rt.container_status(long)).pid
    with open(f"/proc/{pid}/cmdline") as f:
        assert f.read().split("\0")[:2] == ["sleep", "300"]
    assert _ppid(pid) == sb_pid
    assert _ns(pid, "pid") == _ns(sb_pid, "pid") and _ns(pid, "net") == _ns(sb_pid, "net")
    assert _ns(pid, "mnt") != _ns(sb_pid, "mnt")
    assert pid in rt.cgroups.procs_recursive(rt.containers[long].cgroup)
    assert sb_pid not in rt.cgroups.procs_recursive(rt.containers[long].cgroup)

    async def run_to_end(name: str, script: str):
        cid = await rt.create_container(sid, ContainerConfig(
            name=name, image="x", log_path=f"{name}/0.log", command=["sh", "-c", script]), cfg)
        await rt.start_container(cid)
        return await asyncio.wait_for(rt.wait_container(cid), 10)

    status = await run_to_end("short", "ls /proc/$$/fd; echo err >&2; printf tail; exit 3")
    assert status.exit_code == 3 and status.reason == "Error"
    assert _streams(status.log_path) == {"stdout": ["F 0", "F 1", "F 2", "F tail"], "stderr": ["F err"]}
    status = await run_to_end("daemon", "sleep 300 & echo started")
    assert status.exit_code == 0 and status.reason == "Completed"
    assert _streams(status.log_path)["stdout"] == ["F started"]
    await assert_missing_binary_fails_to_start(rt, sid, cfg)
    tty = await rt.create_container(sid, ContainerConfig(name="tty", image="x", log_path="tty/0.log", tty=True,
                                                         command=["sh", "-c", "ls -1 /proc/$$/fd"]), cfg)
    await rt.start_container(tty)  # a shim of its own: neither its spec's fds nor its report pipe leak
    status = await asyncio.wait_for(rt.wait_container(tty), 10)
    # a terminal: lines end in CRLF, and 0-2 are the same terminal
    assert [line.rstrip("\r") for line in _streams(status.log_path)["stdout"]] == ["F 0", "F 1", "F 2"]
    assert (await rt.container_status(long)).state == ContainerState.CONTAINER_RUNNING
    await rt.stop_container(long, 5)
    status = await rt.container_status(long)
    assert status.state == ContainerState.CONTAINER_EXITED and status.exit_code == 143
    await rt.remove_pod_sandbox(sid)
    assert not alive(sb_pid)


@needs_root
@pytest.mark.root
async def test_exec_runs_under_a_forked_shim(runtime_factory, tmp_path):
    """An exec's command runs under a shim the fork server forked (no interpreter start per
    probe), in the container's namespaces and cgroup, with only its own stdio; a command
    that cannot start answers 127 with exec's message, and one past its timeout is killed.
    No spec file is left behind."""
    rt = runtime_factory(isolate=True)
    cfg = sandbox(tmp_path, "ex")
    sid, cid = await start(rt, cfg, ["sleep", "300"])
    container_pid = (await rt.container_status(cid)).pid
    res = await rt.exec_sync(cid, ["sh", "-c", "ls /proc/$$/fd; echo oops >&2; exit 4"], 10)
    assert (res.exit_code, res.stdout.decode().split(), res.stderr) == (4, ["0", "1", "2"], b"oops\n")
    res = await rt.exec_sync(cid, ["no-such-binary-xyz"], 10)
    assert res.exit_code == 127
    assert res.stderr.decode().strip() == 'exec: "no-such-binary-xyz": executable file not found in $PATH'

    session = await rt.exec(cid, ["sleep", "300"], tty=False, stdin=False)
    pid = session.proc.pid
    assert _ppid(_ppid(pid)) == rt.zygote.proc.pid  # command <- shim <- fork server
    assert _ns(pid, "mnt") == _ns(container_pid, "mnt") and _ns(pid, "pid") == _ns(container_pid, "pid")
    assert pid in rt.cgroups.procs_recursive(rt.containers[cid].cgroup)
    await session.kill()
    assert not alive(pid)

    started = time.monotonic()
    with pytest.raises(CRIError) as info:
        await rt.exec_sync(cid, ["sleep", "300"], 0.5)
    assert info.value.reason == "DeadlineExceeded" and time.monotonic() - started < 5
    assert not [p for p in rt.cgroups.procs_recursive(rt.containers[cid].cgroup) if p != container_pid]
    assert os.listdir(os.path.join(rt.root_dir, "runtime")) == [f"sandbox-{sid}.spec"]
    await rt.remove_pod_sandbox(sid)
