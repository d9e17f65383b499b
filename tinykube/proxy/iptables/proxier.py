"""The iptables proxier: turns tracked changes into partial `iptables-restore` runs.

A sync folds the pending changes into the snapshot, recomputes the rules of only the
changed service ports, and writes the shared top-level chains plus the changed chains;
chains no longer wanted are deleted in the same atomic restore. The first sync (and any
sync after a failure) is a full one that also removes leftovers of earlier runs.

A full sync naming more than `restore.MULTI_COMMIT_CHAINS` chains is staged and streamed:
iptables-restore is started first, and the service ports' chains are computed a batch at
a time and written into its input as blocks of their own COMMIT (ordered as the
`restore` module docstring explains, so the table is consistent after each one), ending
with the KUBE-SERVICES switch and the deletion of stale chains. The restore commits each
block on the other core while the next is computed, so the sync costs about
max(compute, restore) rather than the sum. Between blocks the table mixes old and new
chains, but every state is consistent: new chains are unreachable until the switch and
rewritten ones only jump to chains that exist. A failure raises IptablesError (with the
restore's stderr) and forgets what was applied, so the next sync is a full one again.
Incremental syncs stay one atomic restore.
"""

from __future__ import annotations

import gc
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Iterator

from tinykube.proxy import conntrack
from tinykube.proxy.changes import AppliedChanges, ChangeTracker, fold_changes
from tinykube.proxy.iptables import restore
from tinykube.proxy.iptables.restore import MULTI_COMMIT_CHAINS, TABLES, RestorePlan
from tinykube.proxy.iptables.rules import (
    FILTER,
    LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
    NAT,
    RuleConfig,
    RuleSet,
    ServiceRules,
    base_chains,
    compute_pieces,
    endpoint_count,
    jump_rules,
    top_level_chains,
)
from tinykube.proxy.iptables.runner import Iptables, IptablesError, RestoreStream
from tinykube.proxy.metrics import ProxyMetrics
from tinykube.proxy.model import Snapshot

log = logging.getLogger(__name__)

FULL_SYNC_PERIOD = 3600.0  # upstream forces a full sync at least hourly
BATCH_KEYS = 64  # service ports computed per step of a streamed full sync


@dataclass
class SyncResult:
    """Figures of one sync, for metrics, benchmarks and tests.

    `compute_seconds` is the time spent computing rules and text, `restore_seconds` the
    rest of the sync's wall time (iptables-save/-restore and waiting for them); for a
    streamed full sync the restore runs during the compute, so the sum is the wall time.
    `commits` counts the COMMIT blocks of the restore text.
    """

    full: bool
    chains_written: int
    chains_deleted: int
    rules_written: int
    compute_seconds: float
    restore_seconds: float
    text: str = field(repr=False)
    rules_by_table: dict[str, int]
    commits: int = 0
    large_cluster: bool = False

    @property
    def seconds(self) -> float:
        return self.compute_seconds + self.restore_seconds


class IptablesProxier:
    """Owns the desired state and what was last applied; `sync()` reconciles them."""

    def __init__(
        self,
        cfg: RuleConfig,
        iptables: Iptables | None = None,
        metrics: ProxyMetrics | None = None,
        clear_conntrack: bool = True,
        multi_commit: bool | None = None,
    ) -> None:
        self.cfg = cfg
        # stage large restores over many COMMITs; None: ask the runner (nf_tables: yes)
        self.multi_commit = multi_commit
        self.iptables = iptables  # None: compute only (benchmarks, unit tests)
        self.metrics = metrics
        self.clear_conntrack = clear_conntrack
        self.tracker = ChangeTracker()
        self.snapshot = Snapshot()
        self.pieces: dict[str, ServiceRules] = {}
        self.applied: dict[str, dict[str, tuple[str, ...]]] | None = None
        self.last_result: SyncResult | None = None
        self.last_full_sync = float("-inf")

    async def sync(self) -> SyncResult:
        """One sync: fold changes, recompute changed pieces, restore, then account."""
        start = time.perf_counter()
        await self._check_full_sync_needed()
        full = self.applied is None
        staged = False
        large = False

        def compute(keys: set[str]) -> dict[str, ServiceRules]:
            nonlocal staged, large
            endpoints = endpoint_count(self.snapshot)
            large = endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
            staged = full and len(self.snapshot.services) + endpoints > MULTI_COMMIT_CHAINS
            if staged:
                return {}  # computed batch by batch while the restore runs
            return compute_pieces(self.cfg, self.snapshot, keys, large)

        # A full sync allocates hundreds of thousands of tuples and dicts, which would
        # trigger repeated full collections (~25% of its CPU time): collect after it.
        paused_gc = full and gc.isenabled()
        if paused_gc:
            gc.disable()
        try:
            fold = fold_changes(self.tracker, self.snapshot, self.pieces, full, compute)
        except BaseException:
            if paused_gc:
                gc.enable()
            raise
        try:
            if staged:
                folded = time.perf_counter()
                plan, text, compute_seconds = await self._staged_sync(fold.keys, large)
                compute_seconds += folded - start
            else:
                plan, text, compute_seconds = await self._single_sync(full, fold.keys, fold.old_pieces, start)
        except IptablesError:
            self.applied = None  # the kernel state is unknown: next sync is a full one
            if self.metrics:
                self.metrics.restore_failures.inc()
            raise
        except BaseException:
            self.applied = None
            raise
        finally:
            if paused_gc:
                gc.enable()
        restore_done = time.perf_counter()
        self._record_applied(plan, full)
        if full:
            self.last_full_sync = time.monotonic()
        if self.iptables is not None and self.clear_conntrack:
            await conntrack.delete_flows(fold.stale_flows(self.snapshot))
        result = SyncResult(
            full=full,
            chains_written=plan.chains_written(),
            chains_deleted=sum(len(d) for d in plan.delete.values()),
            rules_written=sum(len(r) for w in plan.write.values() for r in w.values()),
            compute_seconds=compute_seconds,
            restore_seconds=restore_done - start - compute_seconds,
            text=text,
            rules_by_table={t: sum(len(r) for r in plan.write[t].values()) for t in TABLES},
            commits=text.count("COMMIT\n"),
            large_cluster=large,
        )
        self._observe(result, fold.changes, time.perf_counter() - start)
        self.last_result = result
        return result

    async def _single_sync(self, full: bool, keys: set[str], old_pieces: dict[str, ServiceRules],
                           start: float) -> tuple[RestorePlan, str, float]:
        """A partial sync, or a small full one: one text, one atomic COMMIT per table."""
        saved = await self._saved() if full else None
        existing = self._existing_chains(saved) if saved is not None else None
        io_seconds = time.perf_counter() - start if full else 0.0
        if full:
            plan = restore.plan(self._desired_fixed_and_all(), None, existing)
        else:
            plan = self._partial_plan(keys, old_pieces)
        text = plan.render()
        compute_seconds = time.perf_counter() - start - io_seconds
        if self.iptables is not None and not plan.empty:
            setup = ""
            if full:
                assert saved is not None and existing is not None
                setup = await self._ensure_jumps(saved, existing)
            await self.iptables.restore(setup + text)
        return plan, text, compute_seconds

    async def _staged_sync(self, keys: set[str], large: bool) -> tuple[RestorePlan, str, float]:
        """A large full sync: blocks computed batch by batch and streamed into one
        iptables-restore as they are made (see the module docstring)."""
        saved = await self._saved()
        existing = self._existing_chains(saved)
        multi = await self._multi_commit()
        stream: RestoreStream | None = None
        opener = getattr(self.iptables, "open_restore", None)  # test doubles may only `restore`
        setup = ""
        if self.iptables is not None:
            setup = await self._ensure_jumps(saved, existing)
            if opener is not None:
                stream = await opener()
                if setup:
                    await stream.write(setup)
        plan = RestorePlan()
        fixed = base_chains(self.cfg)
        plan.write[NAT].update(fixed[NAT])
        cfg, snapshot, pieces, nat = self.cfg, self.snapshot, self.pieces, plan.write[NAT]
        order = sorted(keys)

        def batches() -> Iterator[dict[str, tuple[str, ...]]]:
            for i in range(0, len(order), BATCH_KEYS):
                computed = compute_pieces(cfg, snapshot, order[i:i + BATCH_KEYS], large)
                pieces.update(computed)
                batch: dict[str, tuple[str, ...]] = {}
                for piece in computed.values():
                    batch.update(piece.nat_chains)
                nat.update(batch)
                yield batch

        top: dict[str, dict[str, tuple[str, ...]]] = {}

        def switch() -> dict[str, tuple[str, ...]]:
            top.update(top_level_chains(cfg, pieces))
            nat.update(top[NAT])
            return top[NAT]

        def stale_nat() -> set[str]:
            plan.delete[NAT] = existing[NAT] - nat.keys()
            return plan.delete[NAT]

        def filter_block() -> Iterator[str]:
            chains = dict(fixed[FILTER])
            chains.update(top[FILTER])
            plan.write[FILTER] = chains
            plan.delete[FILTER] = existing[FILTER] - chains.keys()
            yield restore.block(FILTER, chains, delete=plan.delete[FILTER])

        blocks: Iterator[str] = itertools.chain(
            restore.staged_blocks(fixed[NAT], batches(), switch, stale_nat, last_rule_chains=(cfg.services,)),
            filter_block())
        if not multi:
            blocks = restore.single_commit(blocks)
        parts: list[str] = []
        compute_seconds = 0.0
        try:
            while True:
                t = time.perf_counter()
                text = next(blocks, None)
                compute_seconds += time.perf_counter() - t
                if text is None:
                    break
                parts.append(text)
                if stream is not None:
                    await stream.write(text)
                    if stream.failed:
                        break  # close() reports the restore's error
            if stream is not None:
                await stream.close()
                stream = None
        finally:
            if stream is not None:
                await stream.abort()
        t = time.perf_counter()
        joined = "".join(parts)
        compute_seconds += time.perf_counter() - t
        if self.iptables is not None and opener is None:
            await self.iptables.restore(setup + joined)
        return plan, joined, compute_seconds

    async def _multi_commit(self) -> bool:
        if self.multi_commit is not None:
            return self.multi_commit
        ask = getattr(self.iptables, "multi_commit", None)
        return True if ask is None else bool(await ask())

    async def _check_full_sync_needed(self) -> None:
        """Fall back to a full sync hourly, and when our canary chain was flushed away."""
        if self.applied is None:
            return
        if time.monotonic() - self.last_full_sync > FULL_SYNC_PERIOD:
            self.applied = None
        elif self.iptables is not None and not self.tracker.pending:
            # a periodic sync with nothing to do: check nobody flushed our tables
            if not await self.iptables.chain_exists(NAT, self.cfg.canary):
                log.warning("chain %s is gone (tables flushed?): doing a full sync", self.cfg.canary)
                self.applied = None

    def _fixed_chains(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Base and top-level chains: rewritten (when changed) on every sync."""
        fixed = base_chains(self.cfg)
        for table, chains in top_level_chains(self.cfg, self.pieces).items():
            fixed[table].update(chains)
        return fixed

    def _desired_fixed_and_all(self) -> RuleSet:
        desired = RuleSet()
        for table, chains in self._fixed_chains().items():
            desired.tables[table].update(chains)
        for piece in self.pieces.values():
            desired.tables[NAT].update(piece.nat_chains)
        return desired

    def _partial_plan(self, changed: set[str], old_pieces: dict[str, ServiceRules]) -> RestorePlan:
        """Write fixed chains that differ and the changed pieces' chains; delete orphans."""
        assert self.applied is not None
        plan = RestorePlan()
        for table, chains in self._fixed_chains().items():
            before = self.applied[table]
            plan.write[table].update({c: r for c, r in chains.items() if before.get(c) != r})
        nat_before = self.applied[NAT]
        new_chains: set[str] = set()
        for key in changed:
            piece = self.pieces.get(key)
            if piece is None:
                continue
            for chain, rules in piece.nat_chains.items():
                new_chains.add(chain)
                if nat_before.get(chain) != rules:
                    plan.write[NAT][chain] = rules
        for piece in old_pieces.values():
            for chain in piece.nat_chains:
                if chain not in new_chains and chain in nat_before:
                    plan.delete[NAT].add(chain)
        return plan

    def _record_applied(self, plan: RestorePlan, full: bool) -> None:
        if full or self.applied is None:
            self.applied = {t: dict(plan.write[t]) for t in TABLES}
            return
        for table in TABLES:
            self.applied[table].update(plan.write[table])
            for chain in plan.delete[table]:
                self.applied[table].pop(chain, None)

    async def _saved(self) -> dict[str, str]:
        """`iptables-save` of each table ("" without iptables)."""
        if self.iptables is None:
            return {t: "" for t in TABLES}
        return {t: await self.iptables.save(t) for t in TABLES}

    def _existing_chains(self, saved: dict[str, str]) -> dict[str, set[str]]:
        """Our chains already in the kernel (from a previous run), to delete stale ones."""
        return {t: restore.parse_chains(saved[t], self.cfg.chain_prefix) for t in TABLES}

    async def _ensure_jumps(self, saved: dict[str, str], existing: dict[str, set[str]]) -> str:
        """Hook our top-level chains into the built-in chains; returns restore text to run
        first. A jump whose built-in chain has no rule to our chain at all is surely
        missing: the text creates the missing top-level chains and inserts those jumps (no
        process per rule). Others are checked (`-C`) and inserted one by one, as before."""
        assert self.iptables is not None
        fixed = base_chains(self.cfg)
        for table, chains in top_level_chains(self.cfg, {}).items():
            fixed[table].update(chains)
        inserts: dict[str, list[str]] = {t: [] for t in TABLES}
        for table, builtin, args in jump_rules(self.cfg):
            head = f"-A {builtin} "
            target = args[-1]
            if any(line.startswith(head) and restore.jump_target(line) == target
                   for line in saved[table].splitlines()):
                await self.iptables.ensure_rule(table, builtin, args)
            else:
                words = (f'"{a}"' if " " in a else a for a in args)
                inserts[table].append(f"-I {builtin} 1 {' '.join(words)}")
        out = []
        for table in TABLES:
            missing = [c for c in fixed[table] if c not in existing[table]]
            if missing or inserts[table]:
                out.append(f"*{table}\n{restore.chain_lines(missing)}" + "".join(f"{i}\n" for i in inserts[table])
                           + "COMMIT\n")
        return "".join(out)

    def _observe(self, result: SyncResult, changes: AppliedChanges, seconds: float) -> None:
        """Sync metrics, then the rule counts only iptables mode reports."""
        m = self.metrics
        if m is None:
            return
        m.observe_sync(result.full, changes, seconds)
        if self.applied is not None:
            for table in TABLES:
                m.iptables_total.labels(table).set(sum(len(r) for r in self.applied[table].values()))
                m.iptables_last.labels(table).set(result.rules_by_table.get(table, 0))

    async def cleanup(self) -> None:
        """Remove the jumps and every chain with our prefix (`tinykube proxy --cleanup`)."""
        await cleanup(self.cfg, self.iptables or Iptables())
        self.applied = None


async def cleanup(cfg: RuleConfig, iptables: Iptables) -> int:
    """Delete our jumps from the built-in chains, then flush and delete all our chains
    (staged over many COMMITs when there are many: all flushed, then all deleted)."""
    for table, builtin, args in jump_rules(cfg):
        await iptables.delete_rule(table, builtin, args)
    existing = {t: restore.parse_chains(await iptables.save(t), cfg.chain_prefix) for t in TABLES}
    total = sum(len(c) for c in existing.values())
    if total > MULTI_COMMIT_CHAINS and await iptables.multi_commit():
        await iptables.restore("".join(restore.cleanup_blocks(existing)))
    else:
        plan = restore.cleanup_plan(existing)
        if not plan.empty:
            await iptables.restore(plan.render())
    return total
