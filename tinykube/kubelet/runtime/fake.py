"""The ``fake`` runtime: sandboxes and containers that "run" instantly, with no processes.

It behaves like a hollow node's runtime: containers start at once and keep running until
stopped, unless an exit code is injected (per container name, or through the pod annotation
``tinykube.io/fake-exit-code``) in which case they terminate right after starting. Pod IPs
come from the node's podCIDR, logs hold one line saying the container started.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from dataclasses import dataclass, field

from tinykube.api import meta
from tinykube.kubelet.runtime.interface import (
    ContainerConfig, ContainerState, ContainerStatus, CRIError, ExecResult, Image, PodSandboxConfig, PodSandboxStatus, SandboxState,
)
from tinykube.kubelet.runtime.images import RecordedImages, image_id
from tinykube.kubelet.runtime.process import NO_COMMAND
from tinykube.kubelet.runtime.shim import rfc3339nano
from tinykube.kubelet.runtime.usage import ContainerStats

EXIT_CODE_ANNOTATION = "tinykube.io/fake-exit-code"


@dataclass
class _FakeContainer:
    status: ContainerStatus
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class FakeRuntime(RecordedImages):
    """RuntimeService and ImageService without processes, for hollow nodes and tests."""

    name = "tinykube-fake"
    version = "0.1.0"

    def __init__(self, root_dir: str, *, pod_cidr: str = "10.244.0.0/24",
                 exit_codes: dict[str, int] | None = None, require_command: bool = False) -> None:
        self.root_dir = root_dir
        self.exit_codes = dict(exit_codes or {})
        self.require_command = require_command
        self.sandboxes: dict[str, PodSandboxStatus] = {}
        self.containers: dict[str, _FakeContainer] = {}
        self.images: dict[str, Image] = {}
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}
        self._subnet = ipaddress.ip_network(pod_cidr, strict=False)
        self._used: set[str] = set()
        self._planned_exits: dict[str, int] = {}

    def set_pod_cidr(self, cidr: str) -> None:
        if not self.sandboxes:
            self._subnet = ipaddress.ip_network(cidr, strict=False)

    async def version_info(self) -> dict[str, str]:
        return {"runtimeName": self.name, "runtimeVersion": self.version, "runtimeApiVersion": "v1"}

    def _allocate_ip(self) -> str:
        gateway = str(self._subnet.network_address + 1)
        for host in self._subnet.hosts():
            ip = str(host)
            if ip != gateway and ip not in self._used:
                self._used.add(ip)
                return ip
        raise CRIError("FailedCreatePodSandBox", f"no IP addresses available in range set: {self._subnet}")

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        sid = meta.random_hex(16)
        ip = "" if config.host_network else self._allocate_ip()
        self.sandboxes[sid] = PodSandboxStatus(sid, SandboxState.SANDBOX_READY, ip, time.time(), "", config)
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for cid, c in self.containers.items():
            if c.status.sandbox_id == sandbox_id:
                await self.stop_container(cid, 0)
        sb = self.sandboxes.get(sandbox_id)
        if sb is not None:
            sb.state = SandboxState.SANDBOX_NOTREADY
            self._used.discard(sb.ip)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self.stop_pod_sandbox(sandbox_id)
        for cid in [cid for cid, c in self.containers.items() if c.status.sandbox_id == sandbox_id]:
            await self.remove_container(cid)
        self.sandboxes.pop(sandbox_id, None)

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise CRIError("NotFound", f"sandbox {sandbox_id} not found") from None

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]:
        return list(self.sandboxes.values())

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str:
        if sandbox_id not in self.sandboxes:
            raise CRIError("NotFound", f"sandbox {sandbox_id} not found")
        if self.require_command and not config.command:
            raise CRIError("CreateContainerError", NO_COMMAND)
        cid = meta.random_hex(32)
        log_path = os.path.join(sandbox_config.log_directory or self.root_dir, config.log_path or f"{config.name}.log")
        status = ContainerStatus(cid, config.name, config.attempt, ContainerState.CONTAINER_CREATED,
                                 image=config.image, image_ref=image_id(config.image),
                                 created_at=time.time(), log_path=log_path, sandbox_id=sandbox_id)
        self.containers[cid] = _FakeContainer(status)
        code = self.exit_codes.get(config.name)
        annotated = sandbox_config.annotations.get(EXIT_CODE_ANNOTATION)
        if code is None and annotated is not None and annotated.lstrip("-").isdigit():
            code = int(annotated)
        if code is not None:
            self._planned_exits[cid] = code
        return cid

    def _get(self, container_id: str) -> _FakeContainer:
        try:
            return self.containers[container_id]
        except KeyError:
            raise CRIError("NotFound", f"container {container_id} not found") from None

    async def start_container(self, container_id: str) -> None:
        c = self._get(container_id)
        s = c.status
        s.state, s.started_at = ContainerState.CONTAINER_RUNNING, time.time()
        os.makedirs(os.path.dirname(s.log_path), exist_ok=True)
        with open(s.log_path, "a") as f:
            f.write(f"{rfc3339nano(time.time_ns())} stdout F fake container {s.name} started\n")
        if container_id in self._planned_exits:
            self._exit(c, self._planned_exits.pop(container_id))

    def _exit(self, c: _FakeContainer, code: int) -> None:
        s = c.status
        s.state, s.finished_at, s.exit_code = ContainerState.CONTAINER_EXITED, time.time(), code
        s.reason = "Completed" if code == 0 else "Error"
        c.exited.set()

    async def stop_container(self, container_id: str, timeout: float) -> None:
        c = self._get(container_id)
        if c.status.state in (ContainerState.CONTAINER_RUNNING, ContainerState.CONTAINER_CREATED):
            self._exit(c, 137 if timeout <= 0 else 143)

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self._get(container_id).status

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]:
        return [c.status for c in self.containers.values() if sandbox_id in (None, c.status.sandbox_id)]

    async def wait_container(self, container_id: str) -> ContainerStatus:
        c = self._get(container_id)
        await c.exited.wait()
        return c.status

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult:
        self._get(container_id)
        return self.exec_results.get(tuple(cmd), ExecResult(b"", b"", 0))

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool):
        raise CRIError("NotSupported", "the fake runtime does not support streaming exec")

    async def attach(self, container_id: str, *, stdin: bool):
        raise CRIError("NotSupported", "the fake runtime runs no processes to attach to")

    async def container_stats(self, container_id: str) -> ContainerStats:
        """A fake container uses nothing (hollow nodes' metrics are zero, as upstream's)."""
        self._get(container_id)
        return ContainerStats(container_id, time.time(), 0, 0)

    async def port_forward(self, sandbox_id: str, port: int):
        raise OSError(f"the fake runtime runs no pods: nothing listens on port {port}")

    def inject_exit(self, container_id: str, code: int) -> None:
        """Make a running fake container terminate with ``code`` (tests, hollow nodes)."""
        self._exit(self._get(container_id), code)

    async def close(self) -> None:
        for sid in list(self.sandboxes):
            await self.remove_pod_sandbox(sid)
