"""The container runtime interface, shaped like Kubernetes' CRI (runtime/v1 api.proto).

The kubelet only talks to a runtime through :class:`RuntimeService` and
:class:`ImageService`. Method and field names follow CRI so that a gRPC client for
containerd can implement the same Protocol later; tinykube's own runtimes (``process``:
host processes in per-pod namespaces, ``fake``: nothing runs) implement it directly.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tinykube.kubelet.runtime.usage import ContainerStats


class CRIError(Exception):
    """A runtime call failed; ``reason`` is what the kubelet reports (e.g. CreateContainerError)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class LoopbackRefused(OSError):
    """A port-forward found nothing on the pod's loopback: not on 127.0.0.1, and not on
    ::1 (``ipv6`` is None where that was not tried)."""

    def __init__(self, ipv4: OSError, ipv6: OSError | None) -> None:
        super().__init__(ipv4.errno, ipv4.strerror)
        self.ipv4, self.ipv6 = ipv4, ipv6


class SandboxState(enum.Enum):
    SANDBOX_READY = 0
    SANDBOX_NOTREADY = 1


class ContainerState(enum.Enum):
    CONTAINER_CREATED = 0
    CONTAINER_RUNNING = 1
    CONTAINER_EXITED = 2
    CONTAINER_UNKNOWN = 3


@dataclass
class Mount:
    """A bind mount from the host into a container (CRI Mount)."""

    container_path: str
    host_path: str
    readonly: bool = False


@dataclass
class LinuxResources:
    """CRI LinuxContainerResources, the subset the process runtime enforces."""

    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit_in_bytes: int = 0
    pids_limit: int = 0


@dataclass
class PodSandboxConfig:
    """What RunPodSandbox needs: identity, DNS, hostname, ports and resources."""

    name: str
    namespace: str
    uid: str
    attempt: int = 0
    hostname: str = ""
    log_directory: str = ""
    dns_servers: list[str] = field(default_factory=list)
    dns_searches: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    host_network: bool = False
    host_pid: bool = False  # the host's PID namespace (hostPID): sees, and is seen by, every process
    host_ipc: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resources: LinuxResources = field(default_factory=LinuxResources)
    host_aliases: list[tuple[str, list[str]]] = field(default_factory=list)
    subdomain: str = ""
    cluster_domain: str = "cluster.local"


@dataclass
class PodSandboxStatus:
    id: str
    state: SandboxState
    ip: str = ""
    created_at: float = 0.0
    network_namespace: str = ""
    config: PodSandboxConfig | None = None


@dataclass
class ContainerConfig:
    """CRI ContainerConfig: what to run and how; ``log_path`` is relative to the sandbox's log dir."""

    name: str
    image: str
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    working_dir: str = ""
    envs: list[tuple[str, str]] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    log_path: str = ""
    attempt: int = 0
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    resources: LinuxResources = field(default_factory=LinuxResources)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStatus:
    """CRI ContainerStatus; times are Unix seconds (float), 0 when not yet happened."""

    id: str
    name: str
    attempt: int
    state: ContainerState
    image: str = ""
    image_ref: str = ""
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    log_path: str = ""
    pid: int = 0
    sandbox_id: str = ""


@dataclass
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


@dataclass
class ImageSpec:
    image: str


@dataclass
class Image:
    id: str
    repo_tags: list[str]
    size: int = 0


class ExecSession(Protocol):
    """A streaming exec or attach: bytes in, bytes out, a final exit code (CRI Exec and
    Attach via a stream; an attach ends with 0 once the container's output ends)."""

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """Yield (stream, data) with stream 1 = stdout, 2 = stderr, until the process ends."""
        ...

    async def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int: ...

    async def end(self) -> None:
        """The client went away: an exec's command is killed, an attached client detaches."""
        ...


@runtime_checkable
class RuntimeService(Protocol):
    """CRI RuntimeService."""

    name: str
    version: str

    async def version_info(self) -> dict[str, str]: ...

    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str: ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig,
                               sandbox_config: PodSandboxConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: float) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def wait_container(self, container_id: str) -> ContainerStatus:
        """Return once the container has exited (a tinykube addition: CRI polls or uses events)."""
        ...

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult: ...

    async def exec(self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession: ...

    async def attach(self, container_id: str, *, stdin: bool) -> ExecSession: ...

    async def container_stats(self, container_id: str) -> "ContainerStats":
        """CRI ContainerStats of a running container: cumulative CPU time, working set."""
        ...

    async def port_forward(self, sandbox_id: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection to ``port`` on the pod's loopback (CRI's PortForward, in-process):
        127.0.0.1, else ::1; :class:`LoopbackRefused` when neither answers."""
        ...


@runtime_checkable
class ImageService(Protocol):
    """CRI ImageService."""

    async def pull_image(self, image: ImageSpec) -> str: ...

    async def image_status(self, image: ImageSpec) -> Image | None: ...

    async def list_images(self) -> list[Image]: ...

    async def remove_image(self, image: ImageSpec) -> None: ...
