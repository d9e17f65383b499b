"""How much CPU and memory a container has used (CRI ContainerStats), read off the host.

With cgroup v2 the container's cgroup counts both (``cpu.stat`` usage_usec; memory.current
less inactive file pages, the working set as upstream's kubelet reports it). With cgroup
v1, whose ``cpu`` controller counts no usage, CPU is the sum over the container's
processes (their own time and that of the children they reaped) and memory the memory
cgroup's usage less inactive file pages; without cgroups both come from the processes
below the container's main one (memory as their resident set).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tinykube.kubelet.runtime.cgroups import CgroupManager

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ContainerStats:
    """CRI ContainerStats: cumulative CPU time in nanoseconds, memory in bytes."""

    container_id: str
    timestamp: float  # Unix seconds
    cpu_usage_core_nano_seconds: int
    memory_working_set_bytes: int


def read_usage(cgroups: CgroupManager | None, rel: str, pid: int) -> tuple[int, int]:
    """(CPU nanoseconds, working set bytes) of a container's cgroup ``rel`` (None: none)
    or, failing that, of the process ``pid`` and its descendants."""
    pids = cgroups.procs_recursive(rel) if cgroups is not None and rel else process_tree(pid)
    if cgroups is not None and rel and cgroups.version == 2:
        path = cgroups.paths(rel)[0]
        cpu = _stat_value(os.path.join(path, "cpu.stat"), "usage_usec") * 1000
        memory = _working_set(os.path.join(path, "memory.current"), os.path.join(path, "memory.stat"),
                              "inactive_file")
        return cpu, memory
    cpu = sum(_process_cpu_ns(p) for p in pids)
    if cgroups is not None and rel:
        path = cgroups.memory_path(rel)
        memory = _working_set(os.path.join(path, "memory.usage_in_bytes"), os.path.join(path, "memory.stat"),
                              "total_inactive_file")
    else:
        memory = sum(_process_rss(p) for p in pids)
    return cpu, memory


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (through /proc's children lists)."""
    out, todo = [], [pid] if pid else []
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _process_cpu_ns(pid: int) -> int:
    """utime + stime + cutime + cstime of a process, in nanoseconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    ticks = sum(int(v) for v in fields[11:15])  # fields 14-17 of stat(5), after pid and comm
    return ticks * 1_000_000_000 // CLOCK_TICKS


def _process_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _working_set(usage_file: str, stat_file: str, inactive_key: str) -> int:
    try:
        with open(usage_file) as f:
            usage = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    return max(0, usage - _stat_value(stat_file, inactive_key))


def _stat_value(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0
