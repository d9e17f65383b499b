"""How much of the machine's CPU time the hypervisor took during a run (``steal`` in
/proc/stat): on a shared VM it moves wall-clock figures more than any code change, so the
benchmarks print it next to them."""

from __future__ import annotations

STEAL = 7  # the eighth number of /proc/stat's "cpu" line


def cpu_times() -> list[int]:
    """The machine-wide "cpu" line of /proc/stat (clock ticks); [] where there is none."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return []


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
