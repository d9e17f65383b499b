"""How much of the machine's CPU time the hypervisor took during a run (``steal`` in
/proc/stat): on a shared VM it moves wall-clock figures more than any code change, so the
benchmarks print it next to them. And which processes used the CPU a run took, since on two
cores a latency goal is mostly a CPU budget."""

from __future__ import annotations

import os
from typing import Callable

from tinykube.testing.processes import command_line

IDLE = 3  # idle and iowait, the fourth and fifth numbers of /proc/stat's "cpu" line
STEAL = 7  # the eighth


def cpu_times() -> list[int]:
    """The machine-wide "cpu" line of /proc/stat (clock ticks); [] where there is none."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


def busy_seconds() -> float:
    """The machine's CPU time so far: everything but idle, iowait and steal (0 without /proc)."""
    t = cpu_times()
    if len(t) <= STEAL:
        return 0.0
    return (sum(t[:STEAL]) - sum(t[IDLE:IDLE + 2])) / os.sysconf("SC_CLK_TCK")


class StealShare:
    """``with StealShare() as steal: ...``, then ``str(steal)``: "steal 6%" (or "")."""

    def __enter__(self) -> StealShare:
        self.before = cpu_times()
        self.share: float | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        after = cpu_times()
        delta = [b - a for a, b in zip(self.before, after)]
        if len(delta) > STEAL and sum(delta) > 0:
            self.share = delta[STEAL] / sum(delta)

    def __str__(self) -> str:
        return "" if self.share is None else f"steal {self.share * 100:.0f}%"


def _task_ns(pid: str) -> int:
    """CPU time of all of a process's threads (ns, from schedstat); 0 once it is gone."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return total


def _parent(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[1]
    except (OSError, IndexError):
        return ""


def process_cpu() -> dict[str, tuple[str, str, int]]:
    """Every process's command line, parent PID and CPU time so far (ns), by PID."""
    return {pid: (command_line(pid), _parent(pid), _task_ns(pid)) for pid in os.listdir("/proc") if pid.isdigit()}


class CpuByRole:
    """``with CpuByRole(role) as cpu: ...``: core-seconds each role used in the block, where
    ``role(cmdline, parent's cmdline)`` names a process's role (or None for the rest), and the
    whole machine's busy time beside them. Processes that exit inside the block are missed."""

    def __init__(self, role: Callable[[str, str], str | None]) -> None:
        self.role = role
        self.used: dict[str, float] = {}
        self.machine = 0.0

    def __enter__(self) -> CpuByRole:
        self.before, self.busy_before = process_cpu(), busy_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        after = process_cpu()
        self.machine = busy_seconds() - self.busy_before
        for pid, (cmdline, parent, ns) in after.items():
            name = self.role(cmdline, after.get(parent, self.before.get(parent, ("", "", 0)))[0])
            if name is not None:
                before = self.before.get(pid, ("", "", 0))[2]
                self.used[name] = self.used.get(name, 0.0) + max(0, ns - before) / 1e9

    def __str__(self) -> str:
        parts = [f"{name} {used:.2f}" for name, used in sorted(self.used.items(), key=lambda kv: -kv[1])]
        return f"CPU core-seconds: {', '.join(parts)}; whole machine {self.machine:.2f}"
