"""cgroupfs management for pods and containers, for cgroup v1 and v2 hosts.

Layout (cgroupfs driver): ``<mount>/<controller>/<parent>/pod<uid>/<container-id>`` on v1,
``<mount>/<parent>/pod<uid>/<container-id>`` on v2. The pod cgroup carries the pod-wide
limits (pids limit, summed memory limit); the container cgroup carries the container's own
cpu quota and memory limit, so an out-of-memory kill can be attributed to one container.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from dataclasses import dataclass

from tinykube.kubelet.runtime.interface import LinuxResources

log = logging.getLogger(__name__)

CGROUP_MOUNT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("cpu", "memory", "pids")
# upstream's pkg/kubelet/cm constants (the kernel's limits for cpu.shares)
MIN_SHARES = 2
MAX_SHARES = 262144
SHARES_PER_CPU = 1024
MILLI_CPU_TO_CPU = 1000


def milli_cpu_to_shares(milli_cpu: int) -> int:
    """upstream's MilliCPUToShares: 1 CPU = 1,024 shares, at least 2 (also for no request)."""
    if milli_cpu <= 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli_cpu * SHARES_PER_CPU // MILLI_CPU_TO_CPU))


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], as runc and the
    kubelet convert it (CpuSharesToCpuWeight): 2 -> 1, 1024 -> 39, 262144 -> 10000."""
    if shares <= 0:
        return 0
    return 1 + ((max(MIN_SHARES, shares) - MIN_SHARES) * 9999) // (MAX_SHARES - MIN_SHARES)


def detect_version(mount: str = CGROUP_MOUNT) -> int:
    """2 when ``mount`` is a unified (cgroup2) hierarchy, else 1."""
    return 2 if os.path.exists(os.path.join(mount, "cgroup.controllers")) else 1


@dataclass
class CgroupManager:
    """Creates, limits, kills and removes cgroups below ``parent`` (e.g. ``tinykube/node1``)."""

    parent: str
    mount: str = CGROUP_MOUNT
    version: int = 0

    def __post_init__(self) -> None:
        if not self.version:
            self.version = detect_version(self.mount)

    @property
    def usable(self) -> bool:
        if self.version == 2:
            return os.access(self.mount, os.W_OK)
        return all(os.access(os.path.join(self.mount, c), os.W_OK) for c in V1_CONTROLLERS)

    def paths(self, rel: str) -> list[str]:
        """The directories of cgroup ``rel`` (one per controller on v1)."""
        if self.version == 2:
            return [os.path.join(self.mount, self.parent, rel)]
        return [os.path.join(self.mount, c, self.parent, rel) for c in V1_CONTROLLERS]

    @functools.cached_property
    def own_paths(self) -> list[str]:
        """The directories of this process's own cgroups, in ``paths()`` order: where a
        shim that joined a container's cgroups for a moment goes back to (read once: the
        kubelet, its fork server and so every shim stay where they started)."""
        own: dict[str, str] = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _hierarchy, controllers, path = line.rstrip("\n").split(":", 2)
                for controller in controllers.split(",") if controllers else [""]:
                    own[controller] = path.lstrip("/")
        if self.version == 2:
            return [os.path.join(self.mount, own.get("", ""))]
        return [os.path.join(self.mount, c, own.get(c, "")) for c in V1_CONTROLLERS]

    def memory_path(self, rel: str) -> str:
        return self._controller_path("memory", rel)

    def _controller_path(self, controller: str, rel: str) -> str:
        if self.version == 2:
            return os.path.join(self.mount, self.parent, rel)
        return os.path.join(self.mount, controller, self.parent, rel)

    def create(self, rel: str, res: LinuxResources) -> list[str]:
        """Create cgroup ``rel`` with the given limits; returns the paths to join."""
        if self.version == 2:
            self._enable_v2_controllers(rel)
        for path in self.paths(rel):
            os.makedirs(path, exist_ok=True)
        self.apply(rel, res)
        return self.paths(rel)

    def _enable_v2_controllers(self, rel: str) -> None:
        parts = [p for p in os.path.join(self.parent, rel).split("/") if p]
        cur = self.mount
        for part in parts:
            control = os.path.join(cur, "cgroup.subtree_control")
            try:
                with open(control, "w") as f:
                    f.write("+cpu +memory +pids")
            except OSError as exc:
                log.debug("enabling controllers in %s: %s", cur, exc)
            cur = os.path.join(cur, part)
            os.makedirs(cur, exist_ok=True)

    def apply(self, rel: str, res: LinuxResources) -> None:
        if self.version == 2:
            base = self._controller_path("", rel)
            if res.cpu_quota > 0:
                _write(base, "cpu.max", f"{res.cpu_quota} {res.cpu_period or 100000}")
            if res.cpu_shares > 0:
                _write(base, "cpu.weight", str(shares_to_weight(res.cpu_shares)))
            if res.memory_limit_in_bytes > 0:
                _write(base, "memory.max", str(res.memory_limit_in_bytes))
                _write(base, "memory.swap.max", "0", optional=True)
            if res.pids_limit > 0:
                _write(base, "pids.max", str(res.pids_limit))
            return
        cpu = self._controller_path("cpu", rel)
        if res.cpu_quota > 0:
            _write(cpu, "cpu.cfs_period_us", str(res.cpu_period or 100000))
            _write(cpu, "cpu.cfs_quota_us", str(res.cpu_quota))
        if res.cpu_shares > 0:
            _write(cpu, "cpu.shares", str(res.cpu_shares))
        mem = self._controller_path("memory", rel)
        if res.memory_limit_in_bytes > 0:
            _write(mem, "memory.limit_in_bytes", str(res.memory_limit_in_bytes))
            _write(mem, "memory.memsw.limit_in_bytes", str(res.memory_limit_in_bytes), optional=True)
        if res.pids_limit > 0:
            _write(self._controller_path("pids", rel), "pids.max", str(res.pids_limit))

    def set_node_cpu_shares(self, shares: int) -> None:
        """The node-level cgroup (``parent``, upstream's ``kubepods``) weighs the node's
        allocatable CPU against everything else on the host. Each level of ``parent`` gets
        it (upstream's kubepods sits directly below the root); a level another kubelet shares
        (``tinykube`` above ``tinykube/<node>``) is only ever raised, never lowered."""
        parts = [p for p in self.parent.split("/") if p]
        if self.version == 2:
            self._enable_v2_controllers("")
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            if self.version == 2:
                path, name, value = os.path.join(self.mount, rel), "cpu.weight", shares_to_weight(shares)
            else:
                path, name, value = os.path.join(self.mount, "cpu", rel), "cpu.shares", shares
            os.makedirs(path, exist_ok=True)
            if depth < len(parts):
                current = _read(path, name).strip()
                if current.isdigit() and int(current) >= value:
                    continue
            _write(path, name, str(value), optional=True)

    def procs(self, rel: str) -> list[int]:
        path = self._controller_path("pids" if self.version == 1 else "", rel)
        return _read_pids(os.path.join(path, "cgroup.procs"))

    def kill_all(self, rel: str, attempts: int = 50) -> None:
        """SIGKILL every process in the cgroup (and below), repeating until none is left."""
        if self.version == 2 and os.path.exists(os.path.join(self._controller_path("", rel), "cgroup.kill")):
            _write(self._controller_path("", rel), "cgroup.kill", "1", optional=True)
        for _ in range(attempts):
            pids = self.procs_recursive(rel)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    async def kill_and_wait(self, rel: str, timeout: float = 5.0) -> bool:
        """SIGKILL everything in the cgroup and wait until the kernel shows it empty (a
        killed process leaves its cgroup only once it has exited); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.kill_all(rel, attempts=1)
            if not self.procs_recursive(rel):
                return True
            if loop.time() > deadline:
                log.warning("cgroup %s still has processes after %.0fs", rel, timeout)
                return False
            await asyncio.sleep(0.01)  # the kernel offers no event for "exited" on v1

    def procs_recursive(self, rel: str) -> list[int]:
        base = self._controller_path("pids" if self.version == 1 else "", rel)
        pids: list[int] = []
        for dirpath, _dirs, files in os.walk(base):
            if "cgroup.procs" in files:
                pids.extend(_read_pids(os.path.join(dirpath, "cgroup.procs")))
        return pids

    def children(self, rel: str) -> list[str]:
        """The child cgroups of ``rel`` (relative names)."""
        base = self._controller_path("pids" if self.version == 1 else "", rel)
        try:
            return [os.path.join(rel, d) if rel else d for d in sorted(os.listdir(base))
                    if os.path.isdir(os.path.join(base, d))]
        except FileNotFoundError:
            return []

    def oom_killed(self, rel: str) -> bool:
        """Whether the kernel OOM-killed a process of this cgroup."""
        if self.version == 2:
            text = _read(self._controller_path("", rel), "memory.events")
        else:
            text = _read(self._controller_path("memory", rel), "memory.oom_control")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def remove(self, rel: str) -> None:
        """Remove the cgroup tree ``rel`` (deepest first); it must be empty of processes."""
        for top in self.paths(rel):
            if not os.path.isdir(top):
                continue
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(dirpath)
                except OSError as exc:
                    log.warning("removing cgroup %s: %s", dirpath, exc)


def _write(directory: str, name: str, value: str, optional: bool = False) -> None:
    try:
        with open(os.path.join(directory, name), "w") as f:
            f.write(value)
    except OSError:
        if not optional:
            raise


def _read(directory: str, name: str) -> str:
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return ""


def _read_pids(path: str) -> list[int]:
    try:
        with open(path) as f:
            return [int(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []
