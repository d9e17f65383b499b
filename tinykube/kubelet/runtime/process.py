"""The ``process`` runtime: containers are host processes, isolated as far as the host allows.

Images are recorded, never pulled: a container runs its ``command``/``args`` from the host's
filesystem. As root on Linux every pod gets what a container runtime would give it: a
network namespace on the node bridge, its own UTS, IPC and PID namespaces (a pause process
is PID 1, so killing it kills everything in the pod), a private mount namespace per
container holding /etc/hosts, /etc/hostname, /etc/resolv.conf and the volumes, and
cgroup limits. Without root, pods share the host network and containers are process groups;
as root on a host without iptables (which the pod network's egress guard needs), pods keep
their namespaces and cgroups but share the host network.
Every sandbox, container and exec runs under a small shim (see ``shim.py``).
"""

from __future__ import annotations

import asyncio
import marshal
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tinykube import aio
from tinykube.api import meta
from tinykube.kubelet.runtime import dnsfiles, shim
from tinykube.kubelet.runtime.attach import AttachChannel, AttachSession, LogAttach
from tinykube.kubelet.runtime.cgroups import CgroupManager, milli_cpu_to_shares
from tinykube.kubelet.runtime.execsession import ProcessExec
from tinykube.kubelet.runtime.images import RecordedImages, image_id
from tinykube.kubelet.runtime.interface import (
    ContainerConfig, ContainerState, ContainerStatus, CRIError, ExecResult, Image, LoopbackRefused, PodSandboxConfig, PodSandboxStatus, SandboxState,
)
from tinykube.kubelet.runtime.network import NetworkError, PodNetwork
from tinykube.kubelet.runtime.usage import ContainerStats, read_usage
from tinykube.kubelet.runtime.zygote import ExecProcess, ShimHandle, Zygote, send_spec

log = logging.getLogger(__name__)

MOUNTPOINTS_FILE = "mountpoints"  # in <root>/runtime: mount points made on the host and still held

# Containers run host binaries, so the kubelet's interpreter directory comes first: `python3`
# and `tinykube` in a command resolve to the installation the kubelet runs from.
DEFAULT_PATH = os.path.dirname(sys.executable) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NO_COMMAND = ("the process runtime needs spec.containers[].command (or args): image entrypoints and "
              "commands are not available")
# Threads for the filesystem work of starting sandboxes and containers (directories, pod
# files, cgroups, spec files): each step is a few blocking syscalls that the kernel may
# make wait (ext4 journal, cgroup_mutex), which would otherwise stall the event loop.
IO_THREADS = 4


def can_isolate() -> bool:
    """Namespaces, mounts and cgroups need root on Linux."""
    return sys.platform.startswith("linux") and os.geteuid() == 0


def no_pod_network(isolate: bool) -> str:
    """Why pods cannot get network namespaces of their own on this host ("" when they can)."""
    if not isolate:
        return "the process runtime runs without root"
    if shutil.which("iptables") is None:
        return "iptables is not installed (the pod network's egress guard needs it)"
    return ""


def can_network() -> bool:
    """Whether pods get their own network namespace and IP on the node bridge here."""
    return not no_pod_network(can_isolate())


@dataclass
class Sandbox:
    id: str
    config: PodSandboxConfig
    dir: str
    created_at: float
    state: SandboxState = SandboxState.SANDBOX_READY
    ip: str = ""
    netns: str = ""
    pid: int = 0
    shim: "ShimHandle | None" = None
    cgroup: str = ""
    control: socket.socket | None = None  # the sandbox starts the pod's plain containers

    def ns_path(self, kind: str) -> str:
        return f"/proc/{self.pid}/ns/{kind}" if self.pid else ""


@dataclass
class Container:
    id: str
    sandbox_id: str
    config: ContainerConfig
    log_path: str
    created_at: float
    state: ContainerState = ContainerState.CONTAINER_CREATED
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    pid: int = 0
    shim: "ShimHandle | None" = None
    reaper: asyncio.Task | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    cgroup: str = ""
    mountpoints: list[str] = field(default_factory=list)  # created on the host for it
    attach: AttachChannel | None = None  # with stdin or a TTY: to its shim

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            id=self.id, name=self.config.name, attempt=self.config.attempt, state=self.state,
            image=self.config.image, image_ref=image_id(self.config.image),
            created_at=self.created_at, started_at=self.started_at,
            finished_at=self.finished_at, exit_code=self.exit_code, reason=self.reason,
            message=self.message, log_path=self.log_path, pid=self.pid, sandbox_id=self.sandbox_id)


class ProcessRuntime(RecordedImages):
    """RuntimeService and ImageService over host processes."""

    name = "tinykube-process"
    version = "0.1.0"

    def __init__(self, root_dir: str, *, pod_cidr: str = "10.244.0.0/24", bridge: str = "tkb0",
                 cgroup_parent: str = "tinykube", isolate: bool | None = None,
                 service_cidr: str = "10.96.0.0/12") -> None:
        self.root_dir = root_dir
        self.isolate = can_isolate() if isolate is None else isolate
        self.no_network = no_pod_network(self.isolate)  # why pods share the host network, if they do
        self.network = PodNetwork(bridge, pod_cidr, service_cidr)
        self.cgroups = CgroupManager(cgroup_parent)
        self.use_cgroups = self.isolate and self.cgroups.usable
        self.sandboxes: dict[str, Sandbox] = {}
        self.containers: dict[str, Container] = {}
        self.images: dict[str, Image] = {}
        self.zygote = Zygote()
        self._mountpoints: dict[str, int] = {}  # host path created as a mount point -> users
        self._io_pool: ThreadPoolExecutor | None = None
        self._closing = False  # close() has started: no new sandboxes or containers
        self._starting = 0  # run_pod_sandbox calls in flight
        self._settled = asyncio.Event()  # set while none is in flight
        self._settled.set()
        os.makedirs(os.path.join(root_dir, "runtime"), exist_ok=True)

    async def _io(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking filesystem work off the event loop."""
        if self._io_pool is None:
            self._io_pool = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="tinykube-runtime-io")
        return await asyncio.get_running_loop().run_in_executor(self._io_pool, fn, *args)

    async def recover(self) -> None:
        """Remove what a previous kubelet on this root dir left behind (it was killed; its
        pods died with it, but namespaces, cgroups and addresses outlive processes). Only
        sandboxes recorded under this root dir are touched: other kubelets on the host keep
        theirs."""
        rdir = os.path.join(self.root_dir, "runtime")
        for name in os.listdir(rdir):
            path = os.path.join(rdir, name)
            if name == MOUNTPOINTS_FILE:
                continue  # once the pods' processes are gone, below
            if name.startswith("sandbox-") and name.endswith(".spec"):
                sid = name[len("sandbox-"):-len(".spec")]
                try:
                    with open(path, "rb") as f:
                        spec = marshal.load(f)
                except (OSError, ValueError, EOFError):
                    spec = {}
                if spec.get("own_netns") and not self.no_network:
                    self.network.ipam.allocated[spec.get("ip", "")] = sid  # so release() frees it
                    await self.network.teardown(sid, spec.get("ip", ""))
                cgroup = spec.get("cgroup_name", "")
                if cgroup and self.use_cgroups:
                    await self.cgroups.kill_and_wait(cgroup)
                    self.cgroups.remove(cgroup)
            _unlink(path)
        record = os.path.join(rdir, MOUNTPOINTS_FILE)
        if os.path.exists(record):
            with open(record) as f:
                for mountpoint in f.read().splitlines():  # deepest first
                    _remove_mountpoint(mountpoint)
            _unlink(record)
        shutil.rmtree(os.path.join(self.root_dir, "sandboxes"), ignore_errors=True)

    async def warm_up(self) -> None:
        """Start what every pod needs before the first one arrives: the shim fork server."""
        await self.zygote.start()

    def set_node_cpu(self, allocatable_milli_cpu: int) -> None:
        """Weigh the node-level cgroup by the node's allocatable CPU (upstream's kubepods
        cgroup: 1,024 shares per core), against every other process on the host."""
        if self.use_cgroups and allocatable_milli_cpu > 0:
            try:
                self.cgroups.set_node_cpu_shares(milli_cpu_to_shares(allocatable_milli_cpu))
            except OSError as exc:
                log.warning("setting the node cgroup's CPU weight: %s", exc)

    # -- identity ------------------------------------------------------------------------
    async def version_info(self) -> dict[str, str]:
        return {"runtimeName": self.name, "runtimeVersion": self.version, "runtimeApiVersion": "v1"}

    def set_pod_cidr(self, cidr: str) -> None:
        """Adopt the node's podCIDR before the first pod starts."""
        if not self.sandboxes and cidr != self.network.pod_cidr:
            self.network = PodNetwork(self.network.bridge, cidr, self.network.service_cidr)

    # -- shims ---------------------------------------------------------------------------
    def _write_spec(self, name: str, spec: dict) -> str:
        path = os.path.join(self.root_dir, "runtime", f"{name}.spec")
        with open(path, "wb") as f:
            marshal.dump(spec, f)
        return path

    async def _spawn_shim(self, name: str, spec: dict) -> tuple[ShimHandle, dict]:
        """Fork a shim and read its first report: {"pid": N} or {"error": message}."""
        handle = await self.zygote.spawn(spec)
        return handle, await handle.first_report()

    async def _spawn_attachable(self, spec: dict, stdin_once: bool) -> tuple[ShimHandle, dict, AttachChannel]:
        """A shim for a container with stdin or a TTY, holding the other end of its attach
        channel."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            handle = await self.zygote.spawn(spec, control=theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return handle, await handle.first_report(), AttachChannel(ours, stdin_once)

    async def _start_in_sandbox(self, sb: Sandbox, spec: dict) -> tuple[ShimHandle, dict]:
        """Have the sandbox start a plain container (no TTY, no other user) itself: no shim
        of its own to fork. Its report pipe answers as a shim's does."""
        assert sb.control is not None
        try:
            handle = await send_spec(sb.control, spec, [])
        except OSError as exc:
            raise CRIError("RunContainerError", f"sandbox {sb.id} does not answer: {exc}") from exc
        return handle, await handle.first_report()

    # -- sandboxes -----------------------------------------------------------------------
    def _refuse_if_closing(self, reason: str, what: str) -> None:
        if self._closing:
            raise CRIError(reason, f"the runtime is shutting down: {what} refused")

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        self._refuse_if_closing("FailedCreatePodSandBox", f"new pod sandbox for {config.namespace}/{config.name}")
        sid = meta.random_hex(16)
        sdir = os.path.join(self.root_dir, "sandboxes", sid)
        sb = Sandbox(sid, config, sdir, time.time())
        self.sandboxes[sid] = sb
        self._starting += 1
        self._settled.clear()
        try:
            await self._start_sandbox(sb)
        except (OSError, NetworkError, CRIError, asyncio.CancelledError) as exc:
            await asyncio.shield(self._discard_sandbox(sb))
            if isinstance(exc, (CRIError, asyncio.CancelledError)):
                raise
            raise CRIError("FailedCreatePodSandBox", f"failed to create pod sandbox: {exc}") from exc
        finally:
            self._starting -= 1
            if not self._starting:
                self._settled.set()
        return sid

    async def _discard_sandbox(self, sb: Sandbox) -> None:
        """Undo a sandbox start that failed (or was cancelled) half-way."""
        await self._destroy_sandbox(sb)
        if self.sandboxes.pop(sb.id, None) is not None:
            if sb.cgroup and self.use_cgroups:
                self.cgroups.remove(sb.cgroup)
            shutil.rmtree(sb.dir, ignore_errors=True)
            _unlink(os.path.join(self.root_dir, "runtime", f"sandbox-{sb.id}.spec"))

    async def _start_sandbox(self, sb: Sandbox) -> None:
        cfg = sb.config
        own_network = not self.no_network and not cfg.host_network
        if own_network:
            await self.network.ensure_bridge()
            sb.ip = self.network.ipam.allocate(sb.id)
        spec: dict = {"mode": "sandbox", "own_netns": own_network, "ip": sb.ip,
                      "pod_proc": self.isolate and not cfg.host_pid, "host_pid": cfg.host_pid,
                      "host_ipc": cfg.host_ipc, "hostname": "" if cfg.host_network else (cfg.hostname or cfg.name)}
        if self.isolate and self.use_cgroups:
            sb.cgroup = f"pod{cfg.uid}"
            spec["cgroup_name"] = sb.cgroup
        await self._io(self._prepare_sandbox, sb, spec)
        if not self.isolate:
            return
        sb.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            sb.shim = await self.zygote.spawn(spec, command_pipe=own_network, control=theirs)
        finally:
            theirs.close()
        msg = await sb.shim.first_report()
        if "error" in msg:
            raise CRIError("FailedCreatePodSandBox", f"failed to create pod sandbox: {msg['error']}")
        sb.pid = int(msg["pid"])
        if own_network:
            await self._connect_network(sb)

    def _prepare_sandbox(self, sb: Sandbox, spec: dict) -> None:
        """The sandbox's directory and pod files, its cgroup and its spec file (on an I/O thread)."""
        os.makedirs(sb.dir, exist_ok=True)
        dnsfiles.write_pod_files(sb.dir, sb.config, sb.ip)
        if not self.isolate:
            return
        if sb.cgroup:
            spec["cgroups"] = self.cgroups.create(sb.cgroup, sb.config.resources)
        self._write_spec(f"sandbox-{sb.id}", spec)  # lets recover() find what a crash left

    async def _connect_network(self, sb: Sandbox) -> None:
        """Plug the sandbox's fresh network namespace into the bridge: the host side of the
        veth pair here, the pod side (address, route) by the sandbox shim itself."""
        assert sb.shim is not None
        await self.network.attach(sb.id, sb.pid)
        net = self.network.ipam
        sb.shim.send_command(f"net {sb.ip} {net.subnet.prefixlen} {net.gateway}")
        msg = await sb.shim.first_report()
        if "netok" not in msg:
            raise CRIError("FailedCreatePodSandBox",
                           f"failed to set up sandbox network: {msg.get('error', 'no answer')}")
        sb.netns = sb.ns_path("net")

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self.sandboxes.get(sandbox_id)
        if sb is None:
            return
        for c in [c for c in self.containers.values() if c.sandbox_id == sandbox_id]:
            await self.stop_container(c.id, 0)
        await self._destroy_sandbox(sb)
        sb.state = SandboxState.SANDBOX_NOTREADY

    async def _destroy_sandbox(self, sb: Sandbox) -> None:
        """Kill the pod's PID namespace and cgroup, and free its network."""
        if sb.shim is not None and not sb.pid:  # a start cut short before the shim reported
            try:
                msg = await aio.wait_for(sb.shim.first_report(), 5)
                sb.pid = int(msg.get("pid", 0))
            except asyncio.TimeoutError:
                log.warning("sandbox %s: its shim never reported", sb.id)
        if sb.control is not None:
            sb.control.close()
            sb.control = None
        if sb.pid:
            _kill(sb.pid, signal.SIGKILL)
        if sb.cgroup:  # before waiting on the shim: one that never reported its pid is in there too
            await self.cgroups.kill_and_wait(sb.cgroup)
        if sb.shim is not None:
            if sb.shim.command_fd is not None:  # waiting for its network: end-of-file ends it
                os.close(sb.shim.command_fd)
                sb.shim.command_fd = None
            await sb.shim.wait()
            sb.shim = None
        if sb.ip:
            # the namespace (and with it the veth pair) goes with its last process
            await self.network.detach(sb.id, sb.ip)
            sb.netns = ""
        sb.pid = 0

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        sb = self.sandboxes.get(sandbox_id)
        if sb is None:
            return
        await self.stop_pod_sandbox(sandbox_id)
        for c in [c for c in self.containers.values() if c.sandbox_id == sandbox_id]:
            await self.remove_container(c.id)
        if sb.cgroup:
            self.cgroups.remove(sb.cgroup)
        shutil.rmtree(sb.dir, ignore_errors=True)
        _unlink(os.path.join(self.root_dir, "runtime", f"sandbox-{sb.id}.spec"))
        del self.sandboxes[sandbox_id]

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        sb = self._sandbox(sandbox_id)
        return PodSandboxStatus(sb.id, sb.state, sb.ip, sb.created_at, sb.netns, sb.config)

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return [await self.pod_sandbox_status(sid) for sid in self.sandboxes]

    def _sandbox(self, sandbox_id: str) -> Sandbox:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise CRIError("NotFound", f"sandbox {sandbox_id} not found") from None

    # -- containers ----------------------------------------------------------------------
    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        self._refuse_if_closing("CreateContainerError", f"new container {config.name}")
        sb = self._sandbox(sandbox_id)
        if not config.command and not config.args:  # args alone run as for an image without ENTRYPOINT
            raise CRIError("CreateContainerError", NO_COMMAND)
        cid = meta.random_hex(32)
        log_path = os.path.join(sandbox_config.log_directory or sb.dir, config.log_path or f"{config.name}.log")
        await self._io(_makedirs, os.path.dirname(log_path))
        self.containers[cid] = Container(cid, sandbox_id, config, log_path, time.time())
        return cid

    def _container(self, container_id: str) -> Container:
        try:
            return self.containers[container_id]
        except KeyError:
            raise CRIError("NotFound", f"container {container_id} not found") from None

    def _env(self, cfg: ContainerConfig) -> dict[str, str]:
        env = {"PATH": DEFAULT_PATH, "HOME": "/root"}
        env.update(dict(cfg.envs))
        return env

    def _make_mountpoints(self, c: Container, mounts: list[dict]) -> None:
        """Create missing mount points on the host filesystem (every container's root) and
        remember them, so they are removed with the last container that needed them (or,
        after a crash, by the next runtime on this root dir: ``MOUNTPOINTS_FILE``)."""
        before = len(self._mountpoints)
        for m in mounts:
            target = m["container"]
            chain = []  # the target and its ancestors this runtime creates (or created), deepest first
            path = target
            while path not in ("/", "") and (path in self._mountpoints or not os.path.lexists(path)):
                chain.append(path)
                path = os.path.dirname(path)
            for created in reversed(chain):
                if not os.path.lexists(created):
                    if created == target and not os.path.isdir(m["host"]):
                        with open(created, "a"):
                            pass
                    else:
                        os.mkdir(created)
                self._mountpoints[created] = self._mountpoints.get(created, 0) + 1
            c.mountpoints.extend(chain)
        if len(self._mountpoints) != before:
            self._record_mountpoints()

    def _release_mountpoints(self, c: Container) -> None:
        before = len(self._mountpoints)
        for path in c.mountpoints:  # deepest first, as recorded
            count = self._mountpoints.get(path, 0) - 1
            if count > 0:
                self._mountpoints[path] = count
                continue
            self._mountpoints.pop(path, None)
            _remove_mountpoint(path)
        c.mountpoints.clear()
        if len(self._mountpoints) != before:
            self._record_mountpoints()

    def _record_mountpoints(self) -> None:
        """The mount points this runtime created and still holds, deepest first, for a
        successor to remove if this process dies without doing it."""
        path = os.path.join(self.root_dir, "runtime", MOUNTPOINTS_FILE)
        paths = sorted(self._mountpoints, key=lambda p: p.count("/"), reverse=True)
        with open(path + ".tmp", "w") as f:
            f.write("".join(p + "\n" for p in paths))
        os.replace(path + ".tmp", path)

    def _mounts(self, sb: Sandbox, cfg: ContainerConfig) -> list[dict]:
        targets = {m.container_path for m in cfg.mounts}
        mounts = [{"host": os.path.join(sb.dir, f), "container": p, "readonly": False}
                  for f, p in dnsfiles.POD_FILES.items() if p not in targets]
        return mounts + [{"host": m.host_path, "container": m.container_path, "readonly": m.readonly}
                         for m in cfg.mounts]

    def _namespaces(self, sb: Sandbox) -> dict[str, str]:
        if not self.isolate or not sb.pid:
            return {}
        return {"pid": sb.ns_path("pid"), "ipc": sb.ns_path("ipc"), "uts": sb.ns_path("uts"),
                "net": sb.ns_path("net"), "mnt": sb.ns_path("mnt")}

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        self._refuse_if_closing("RunContainerError", f"starting container {c.config.name}")
        sb = self._sandbox(c.sandbox_id)
        cfg = c.config
        if sb.state != SandboxState.SANDBOX_READY:
            raise CRIError("RunContainerError", "sandbox is not ready")
        spec: dict = {"mode": "container", "argv": cfg.command + cfg.args, "env": self._env(cfg),
                      "cwd": cfg.working_dir, "log_path": c.log_path,
                      "exit_file": os.path.join(self.root_dir, "runtime", f"{c.id}.exit"),
                      "uid": cfg.run_as_user, "gid": cfg.run_as_group}
        if self.isolate:
            mounts = self._mounts(sb, cfg)
            self._make_mountpoints(c, mounts)
            spec.update(ns=self._namespaces(sb), private_mounts=True, mounts=mounts)
        if self.use_cgroups and sb.cgroup:
            c.cgroup = f"{sb.cgroup}/{c.id[:16]}"
            spec["cgroups"] = await self._io(self.cgroups.create, c.cgroup, cfg.resources)
            spec["cgroups_home"] = self.cgroups.own_paths
        if cfg.stdin or cfg.tty:
            spec.update(stdin=cfg.stdin, tty=cfg.tty)
            c.shim, msg, c.attach = await self._spawn_attachable(spec, cfg.stdin_once)
        elif sb.control is not None and cfg.run_as_user is None and cfg.run_as_group is None:
            c.shim, msg = await self._start_in_sandbox(sb, spec)
        else:
            c.shim, msg = await self._spawn_shim(c.id, spec)
        if "error" in msg:
            await c.shim.wait()
            c.state, c.exit_code, c.reason = ContainerState.CONTAINER_EXITED, 128, "StartError"
            c.message = msg["error"]
            c.started_at = c.finished_at = time.time()
            c.exited.set()
            raise CRIError("RunContainerError", msg["error"])
        c.pid = int(msg["pid"])
        c.started_at = time.time()
        c.state = ContainerState.CONTAINER_RUNNING
        c.reaper = asyncio.create_task(self._reap(c), name=f"reap-{cfg.name}")

    async def _reap(self, c: Container) -> None:
        """Record the container's exit once its shim ends."""
        assert c.shim is not None
        code = await c.shim.wait()
        exit_file = os.path.join(self.root_dir, "runtime", f"{c.id}.exit")
        try:
            with open(exit_file) as f:
                code_text, _sig, finished, *_msg = f.read().split(" ", 3)
            c.exit_code, c.finished_at = int(code_text), float(finished)
        except (OSError, ValueError):
            c.exit_code, c.finished_at = (code if code >= 0 else 128 - code), time.time()
        if c.cgroup:
            oom = self.cgroups.oom_killed(c.cgroup)
            await self.cgroups.kill_and_wait(c.cgroup)
        else:
            oom = False
            _killpg(c.pid)
        c.reason = "OOMKilled" if oom else ("Completed" if c.exit_code == 0 else "Error")
        c.state = ContainerState.CONTAINER_EXITED
        c.exited.set()

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self._container(container_id)
        if c.state != ContainerState.CONTAINER_RUNNING:
            if c.state == ContainerState.CONTAINER_CREATED:
                c.state = ContainerState.CONTAINER_EXITED
                c.exited.set()
            return
        if timeout > 0:
            _kill(c.pid, signal.SIGTERM)
            try:
                await aio.wait_for(c.exited.wait(), timeout)
                return
            except asyncio.TimeoutError:
                pass
        if c.cgroup:
            self.cgroups.kill_all(c.cgroup)
        else:
            _killpg(c.pid)
        await c.exited.wait()

    async def remove_container(self, container_id: str) -> None:
        c = self.containers.get(container_id)
        if c is None:
            return
        await self.stop_container(container_id, 0)
        if c.reaper is not None:
            await c.reaper
        if c.cgroup:
            self.cgroups.remove(c.cgroup)
        self._release_mountpoints(c)
        if c.attach is not None:
            c.attach.close()
        for suffix in (".spec", ".exit"):
            _unlink(os.path.join(self.root_dir, "runtime", c.id + suffix))
        del self.containers[container_id]

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._container(container_id).status()

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c.status() for c in self.containers.values() if sandbox_id in (None, c.sandbox_id)]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        c = self._container(container_id)
        await c.exited.wait()
        return c.status()

    # -- exec ----------------------------------------------------------------------------
    def _exec_spec(self, c: Container, cmd: list[str], tty: bool) -> dict:
        sb = self._sandbox(c.sandbox_id)
        spec: dict = {"mode": "exec", "argv": cmd, "env": self._env(c.config),
                      "cwd": c.config.working_dir, "tty": tty}
        if self.isolate and sb.pid:
            ns = self._namespaces(sb)
            ns["mnt"] = f"/proc/{c.pid}/ns/mnt"
            spec["ns"] = ns
            spec["uid"], spec["gid"] = c.config.run_as_user, c.config.run_as_group
        if c.cgroup:  # the command starts in the container's cgroups, its shim goes back
            spec["cgroups"] = self.cgroups.paths(c.cgroup)
            spec["cgroups_home"] = self.cgroups.own_paths
        return spec

    def _running(self, container_id: str) -> Container:
        c = self._container(container_id)
        if c.state != ContainerState.CONTAINER_RUNNING:
            raise CRIError("NotRunning", f"container {c.config.name} is not running")
        return c

    async def _start_exec(self, c: Container, cmd: list[str], tty: bool, **stdio: int) -> ExecProcess:
        """A shim forked by the zygote runs the command (a probe every few seconds would
        otherwise start an interpreter each time)."""
        return await ExecProcess.start(self.zygote, self._exec_spec(c, cmd, tty), **stdio)

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult:
        c = self._running(container_id)
        proc = await self._start_exec(c, cmd, False, stdin=asyncio.subprocess.DEVNULL,
                                      stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await aio.wait_for(proc.communicate(), timeout if timeout > 0 else None)
        except asyncio.TimeoutError:
            _kill(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise CRIError("DeadlineExceeded", f"command {cmd!r} timed out after {timeout}s") from None
        return ExecResult(out, err, proc.returncode if proc.returncode is not None else -1)

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool) -> ProcessExec:
        c = self._running(container_id)
        return await ProcessExec.start(lambda **stdio: self._start_exec(c, cmd, tty, **stdio), tty=tty, stdin=stdin)

    async def attach(self, container_id: str, *, stdin: bool) -> AttachSession | LogAttach:
        """Attach to a running container: through its attach channel when it has stdin or a
        TTY, else to its output, from its log."""
        c = self._running(container_id)
        if c.attach is not None:
            return c.attach.session(stdin)
        return LogAttach(c.log_path, c.exited)

    async def container_stats(self, container_id: str) -> ContainerStats:
        c = self._running(container_id)
        cgroups = self.cgroups if self.use_cgroups and c.cgroup else None
        cpu, memory = await self._io(read_usage, cgroups, c.cgroup, c.pid)
        return ContainerStats(container_id, time.time(), cpu, memory)

    async def port_forward(self, sandbox_id: str,
                           port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to localhost:``port`` as the pod sees it, in its network namespace when it
        has one of its own, else on the host's loopback: 127.0.0.1 first, then ::1 (as
        upstream's runtimes do) for a server that listens on IPv6 only."""
        sb = self._sandbox(sandbox_id)
        netns = sb.ns_path("net") if sb.netns else ""
        try:
            return await self._connect_loopback(netns, socket.AF_INET, ("127.0.0.1", port))
        except OSError as ipv4:
            try:
                return await self._connect_loopback(netns, socket.AF_INET6, ("::1", port))
            except OSError as ipv6:
                raise LoopbackRefused(ipv4, ipv6) from None

    async def _connect_loopback(self, netns: str, family: int,
                                address: tuple[str, int]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await self._io(socket_in_netns, netns, family) if netns else socket.socket(family)
        try:
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, address)
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        """Stop and remove every sandbox this runtime started. From the first line on, new
        sandboxes and containers are refused; sandbox starts in flight finish (or fail)
        first, so none is left running, and the fork server is not restarted."""
        self._closing = True
        try:
            await aio.wait_for(self._settled.wait(), 10)
        except asyncio.TimeoutError:
            log.warning("%d pod sandbox start(s) still in flight at close", self._starting)
        if self._io_pool is not None:  # let set-ups in flight finish before removing what they create
            pool, self._io_pool = self._io_pool, None
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        for sid in list(self.sandboxes):
            await self.remove_pod_sandbox(sid)
        if self.use_cgroups:
            for path in self.cgroups.paths(""):
                try:
                    os.rmdir(path)  # only if empty: another kubelet may share the parent
                except OSError:
                    pass
        await self.zygote.close()


def _remove_mountpoint(path: str) -> None:
    """Remove a mount point this runtime made, if it is still the empty file or directory
    it made."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.getsize(path) == 0:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("leaving mount point %s: %s", path, exc)


def socket_in_netns(netns: str, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket created inside the network namespace at ``netns``: a thread of its own
    enters the namespace (setns changes only the calling thread) and ends there."""
    result: list[socket.socket | OSError] = []

    def enter_and_create() -> None:
        try:
            shim.setns(netns)
            result.append(socket.socket(family))
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=enter_and_create, name="tinykube-netns-socket")
    thread.start()
    thread.join()
    if isinstance(result[0], OSError):
        raise result[0]
    return result[0]


def _kill(pid: int, sig: int) -> None:
    if pid:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _killpg(pid: int) -> None:
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _makedirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

