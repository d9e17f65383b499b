"""`iptables-restore --noflush` input for a partial sync: only the named chains change.

Declaring `:CHAIN - [0:0]` creates or flushes exactly that chain and leaves every other
chain of the table alone, so the text lists the chains being rewritten (with all their
rules) and the stale chains being deleted (declared, so flushed, then `-X`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from tinykube.proxy.iptables.rules import FILTER, NAT, RuleSet

TABLES = (FILTER, NAT)


@dataclass
class RestorePlan:
    """What one sync writes: per table, chains rewritten and chains deleted."""

    write: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=lambda: {t: {} for t in TABLES})
    delete: dict[str, set[str]] = field(default_factory=lambda: {t: set() for t in TABLES})

    def render(self) -> str:
        out: list[str] = []
        for table in TABLES:
            write, delete = self.write[table], sorted(self.delete[table])
            if not write and not delete:
                continue
            out.append(f"*{table}")
            out.extend(f":{chain} - [0:0]" for chain in sorted(write))
            out.extend(f":{chain} - [0:0]" for chain in delete)
            for chain in sorted(write):
                out.extend(write[chain])
            out.extend(f"-X {chain}" for chain in delete)
            out.append("COMMIT")
        return "\n".join(out) + "\n" if out else ""

    @property
    def empty(self) -> bool:
        return not any(self.write.values()) and not any(self.delete.values())

    def chains_written(self) -> int:
        return sum(len(w) for w in self.write.values())


def plan(
    desired: RuleSet,
    applied: Mapping[str, Mapping[str, tuple[str, ...]]] | None,
    existing: Mapping[str, set[str]] | None = None,
) -> RestorePlan:
    """Diff desired against what was applied: write chains whose rules differ, delete the rest.

    `applied` None means nothing is known (a full sync): every desired chain is written and
    every chain in `existing` (our chains found in the kernel) not desired is deleted.
    """
    result = RestorePlan()
    for table in TABLES:
        want = desired.tables[table]
        if applied is None:
            result.write[table] = dict(want)
            have: set[str] = set(existing.get(table, ())) if existing else set()
        else:
            before = applied.get(table, {})
            result.write[table] = {c: r for c, r in want.items() if before.get(c) != r}
            have = set(before)
        result.delete[table] = have - set(want)
    return result


def cleanup_plan(existing: Mapping[str, set[str]]) -> RestorePlan:
    """Flush and delete every listed chain (used by `--cleanup`)."""
    result = RestorePlan()
    for table in TABLES:
        result.delete[table] = set(existing.get(table, ()))
    return result


def parse_chains(save_output: str, prefix: str) -> set[str]:
    """Names of chains starting with `prefix` in `iptables-save -t TABLE` output."""
    chains = set()
    for line in save_output.splitlines():
        if line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if name.startswith(prefix):
                chains.add(name)
    return chains
