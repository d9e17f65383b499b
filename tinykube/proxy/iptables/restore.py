"""`iptables-restore --noflush` input: a partial sync names only the chains that change.

Declaring `:CHAIN - [0:0]` creates or flushes exactly that chain and leaves every other
chain of the table alone, so the text lists the chains being rewritten (with all their
rules) and the stale chains being deleted (declared, so flushed, then `-X`).

Large writes are staged over several COMMITs (`staged_blocks`). iptables-nft-restore
1.8.9 with `--noflush` keeps, per COMMIT, a name-sorted list of the chains referenced so
far and finds each declaration, `-A CHAIN` and `-j TARGET` by a linear walk of it: one
COMMIT naming 30,000 chains costs about 30 s, most of it in `strcmp`. Blocks of a few
hundred chains, declared in descending name order, keep the walks short; the order of
the blocks keeps the table consistent after every COMMIT:

1. the fixed chains that service chains jump to (KUBE-MARK-MASQ, ...);
2. the service ports' chains, a few hundred per block, each block holding every chain
   its rules jump to (a service port's KUBE-SEP-*, KUBE-SVC-*, KUBE-SVL-*, KUBE-EXT-*
   together) or a chain written by an earlier block. A new chain is unreachable until
   step 3; a rewritten existing chain only jumps to chains that exist, so traffic that
   reaches it early is served by the new rules. These blocks may commit in any order,
   so they can be split between concurrent restores;
3. the "switch": KUBE-SERVICES and KUBE-NODEPORTS, whose jumps now reach the new chains
   (their jumps written in descending target order, the KUBE-NODEPORTS jump kept last);
4. the stale chains, now unreachable: flushed, then deleted (in one block when few);
5. the filter table (one block).

A failure part-way leaves a mix of old and new chains that is consistent as above; the
proxier then forgets what it applied, so the next sync is a full one again. Small
writes (incremental syncs, small clusters) stay one atomic COMMIT per table, and with
iptables-legacy, whose every COMMIT rewrites the whole table, the staged text is joined
into one COMMIT per table (`multi_commit=False`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Collection, Iterable, Iterator, Mapping, Sequence

from tinykube.proxy.iptables.rules import FILTER, NAT, RuleSet

TABLES = (FILTER, NAT)
MULTI_COMMIT_CHAINS = 1000  # a full sync naming more chains than this is staged
BLOCK_CHAINS = 300  # chains per staged COMMIT (25-50: more kernel work; 1,000+: longer walks)


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


def cleanup_blocks(existing: Mapping[str, Collection[str]], block_chains: int = BLOCK_CHAINS) -> Iterator[str]:
    """`cleanup_plan` staged: per table, every chain flushed (blocks of `block_chains`,
    descending), then every chain deleted; flushing first removes all jumps between them."""
    for table in TABLES:
        names = sorted(existing.get(table, ()), reverse=True)
        for i in range(0, len(names), block_chains):
            yield block(table, {}, flush=names[i:i + block_chains])
        for i in range(0, len(names), block_chains):
            yield f"*{table}\n" + "".join(f"-X {c}\n" for c in names[i:i + block_chains]) + "COMMIT\n"


def parse_chains(save_output: str, prefix: str) -> set[str]:
    """Names of chains starting with `prefix` in `iptables-save -t TABLE` output."""
    chains = set()
    for line in save_output.splitlines():
        if line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if name.startswith(prefix):
                chains.add(name)
    return chains


Chains = Mapping[str, Sequence[str]]


def chain_lines(chains: Iterable[str]) -> str:
    return "".join(f":{c} - [0:0]\n" for c in chains)


def block(table: str, chains: Chains, delete: Collection[str] = (), flush: Collection[str] = (),
          *, ordered: Sequence[str] | None = None) -> str:
    """One `*table ... COMMIT` block: `chains` declared and filled in descending name order
    (or `ordered`), `flush` declared (so emptied) only, `delete` declared and `-X`ed."""
    names = sorted(chains, reverse=True) if ordered is None else ordered
    drop = sorted(delete, reverse=True)
    out = [f"*{table}\n", chain_lines(names), chain_lines(sorted(flush, reverse=True)), chain_lines(drop)]
    for name in names:
        rules = chains[name]
        if rules:
            out.append("\n".join(rules))
            out.append("\n")
    out.extend(f"-X {c}\n" for c in drop)
    out.append("COMMIT\n")
    return "".join(out)


def jump_target(rule: str) -> str:
    return rule.rpartition(" -j ")[2].split(" ", 1)[0]


def jumps_descending(rules: Sequence[str], keep_last: bool = False) -> list[str]:
    """Rules sorted by jump target, descending (each target lands at the head of the sorted
    list); `keep_last` leaves the final rule (KUBE-SERVICES' KUBE-NODEPORTS jump) last."""
    body = rules[:-1] if keep_last and rules else rules
    out = sorted(body, key=jump_target, reverse=True)
    if keep_last and rules:
        out.append(rules[-1])
    return out


def staged_blocks(
    fixed: Chains,
    batches: Iterable[Chains],
    switch: Callable[[], Chains],
    stale: Callable[[], Collection[str]],
    last_rule_chains: Collection[str] = (),
    block_chains: int = BLOCK_CHAINS,
) -> Iterator[str]:
    """The nat table's staged blocks (steps 1-4 of the module docstring).

    `batches` yields the service ports' chains a batch at a time (computed lazily, so a
    caller can stream each block to iptables-restore while computing the next); batches
    are merged until a block holds `block_chains` chains. `switch` and `stale` are called
    once every batch is consumed. Chains in `last_rule_chains` keep their last rule last.
    """
    if fixed:
        yield block(NAT, fixed)
    pending: dict[str, Sequence[str]] = {}
    for batch in batches:
        pending.update(batch)
        if len(pending) >= block_chains:
            yield block(NAT, pending)
            pending = {}
    if pending:
        yield block(NAT, pending)
    top = switch()
    ordered = {c: jumps_descending(r, keep_last=c in last_rule_chains) for c, r in top.items()}
    gone = sorted(stale(), reverse=True)
    if len(gone) <= block_chains:
        yield block(NAT, ordered, delete=gone)
        return
    yield block(NAT, ordered)
    for i in range(0, len(gone), block_chains):
        yield block(NAT, {}, flush=gone[i:i + block_chains])
    for i in range(0, len(gone), block_chains):
        part = gone[i:i + block_chains]
        yield f"*{NAT}\n" + "".join(f"-X {c}\n" for c in part) + "COMMIT\n"


def single_commit(blocks: Iterable[str]) -> Iterator[str]:
    """The same text as one COMMIT per table: drops every inner `COMMIT` / `*table` pair."""
    current = None
    for text in blocks:
        head, _, body = text.partition("\n")
        table = head[1:]
        body = body[: -len("COMMIT\n")]
        if table != current:
            if current is not None:
                yield "COMMIT\n"
            yield head + "\n"
            current = table
        yield body
    if current is not None:
        yield "COMMIT\n"
