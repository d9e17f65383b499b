"""The iptables proxier: turns tracked changes into partial `iptables-restore` runs.

A sync folds the pending changes into the snapshot, recomputes the rules of only the
changed service ports, and writes the shared top-level chains plus the changed chains;
chains no longer wanted are deleted in the same atomic restore. The first sync (and any
sync after a failure) is a full one that also removes leftovers of earlier runs.

A full sync folds the changes lazily (`changes.LazyFold`): only as many services as it
takes to decide large-cluster mode and staging (~500 for 10,000) before the first block;
the rest are folded batch by batch while the blocks are written, and a sync that stops
early leaves them pending. A full sync naming more than `restore.MULTI_COMMIT_CHAINS`
chains is staged and streamed: iptables-restore is started first, and the service ports'
chains are computed a batch at a time and written into its input as blocks of their own
COMMIT (ordered as the `restore` module docstring explains, so the table is consistent
after each one), ending with the KUBE-SERVICES switch and the deletion of stale chains.
The restore commits each block while the next is computed, so the sync costs about
max(compute, restore) rather than the sum. With nf_tables the service ports' blocks,
which do not depend on each other, are spread over two restores (`stream.Lanes`), since
iptables-nft-restore's own CPU is most of the sync; the switch waits for both. Between
blocks the table mixes old and new chains, but every state is consistent: new chains are
unreachable until the switch and rewritten ones only jump to chains that exist. A failure raises IptablesError (with the
restore's stderr) and forgets what was applied, so the next sync is a full one again.
Incremental syncs stay one atomic restore (one COMMIT per changed table: with
iptables-nft the kernel revalidates every rule reachable from the nat base chains once
per COMMIT that adds a rule, ~17 ms per base chain jumping to KUBE-SERVICES for 10,000
Services). They rebuild the shared top-level chains only when a changed service port's
share of them changed, and keep the large-cluster endpoint count up to date from the
changed ports.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterator

from tinykube.proxy import conntrack
from tinykube.proxy.changes import AppliedChanges, ChangeTracker, Fold, LazyFold
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
from tinykube.proxy.stream import Lanes

log = logging.getLogger(__name__)

FULL_SYNC_PERIOD = 3600.0  # upstream forces a full sync at least hourly
BATCH_KEYS = 64  # service ports computed per step of a streamed full sync
# iptables-restores a staged full sync spreads the service ports' blocks over (nf_tables):
# each one parses and commits on a core of its own
RESTORE_LANES = 2 if (os.cpu_count() or 1) > 1 else 1


@dataclass
class SyncResult:
    """Figures of one sync, for metrics, benchmarks and tests.

    `compute_seconds` is the time spent computing rules and text, `restore_seconds` the
    rest of the sync's wall time (iptables-save/-restore and waiting for them); for a
    streamed full sync the restore runs during the compute, so the sum is the wall time.
    `commits` counts the COMMIT blocks of the restore text.
    `first_block_seconds` (a staged full sync only) is the time from the sync's start to the
    first block handed to iptables-restore.
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
    first_block_seconds: float | None = None  # staged: from the sync's start to its first block

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
        self._first_block: float | None = None
        self._endpoints: int | None = None  # endpoint_count(snapshot) once known

    async def sync(self) -> SyncResult:
        """One sync: fold changes, recompute changed pieces, restore, then account."""
        start = time.perf_counter()
        await self._check_full_sync_needed()
        full = self.applied is None
        # A full sync allocates hundreds of thousands of tuples and dicts, which would
        # trigger repeated full collections (~25% of its CPU time): collect after it.
        paused_gc = full and gc.isenabled()
        if paused_gc:
            gc.disable()
        fold: Fold[ServiceRules] | LazyFold | None = None
        large = False
        self._first_block = None
        try:
            if full:
                self.pieces.clear()
                fold, large, staged, ready = self._begin_full_fold()
                folded = time.perf_counter() - start
                if staged:
                    plan, text, compute_seconds = await self._staged_sync(fold, ready, large)
                else:
                    fold.rest()
                    self.pieces.update(compute_pieces(self.cfg, self.snapshot, None, large))
                    plan, text, compute_seconds = await self._single_sync(True, set(), {}, start)
                    folded = 0.0  # counted by _single_sync
                compute_seconds += folded
            else:
                changes = self.tracker.apply(self.snapshot)
                keys = changes.port_keys
                fold = Fold(changes, keys, {k: self.pieces.pop(k) for k in keys if k in self.pieces})
                large = self._count_endpoints(changes) > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
                self.pieces.update(compute_pieces(self.cfg, self.snapshot, keys, large))
                plan, text, compute_seconds = await self._single_sync(False, fold.keys, fold.old_pieces, start)
        except IptablesError:
            self.applied = None  # the kernel state is unknown: next sync is a full one
            if self.metrics:
                self.metrics.restore_failures.inc()
            raise
        except BaseException:
            self.applied = None
            raise
        finally:
            if full:
                self._endpoints = None  # counted again by the next sync
            if isinstance(fold, LazyFold) and not fold.done:
                fold.abandon()  # what was not folded stays pending for the next sync
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
            first_block_seconds=None if self._first_block is None else self._first_block - start,
        )
        self._observe(result, fold.changes, time.perf_counter() - start)
        self.last_result = result
        return result

    async def _single_sync(self, full: bool, keys: set[str], old_pieces: dict[str, ServiceRules],
                           start: float) -> tuple[RestorePlan, str, float]:
        """A partial sync, or a small full one: one text, one atomic COMMIT per table."""
        io_start = time.perf_counter()
        saved = await self._saved() if full else None
        existing = self._existing_chains(saved) if saved is not None else None
        io_seconds = time.perf_counter() - io_start
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

    def _count_endpoints(self, changes: AppliedChanges) -> int:
        """`endpoint_count` of the snapshot (upstream's large-cluster count), kept up to date
        from the changed service ports instead of summed over every one each sync."""
        snapshot = self.snapshot
        if self._endpoints is None:
            self._endpoints = endpoint_count(snapshot)
            return self._endpoints
        services, endpoints = snapshot.services, snapshot.endpoints
        old_services, old_endpoints = changes.old_services, changes.old_endpoints
        for key in changes.port_keys:
            if key in services:
                self._endpoints += len(endpoints.get(key, ()))
            if key in old_services:
                self._endpoints -= len(old_endpoints.get(key, ()))
        return self._endpoints

    def _begin_full_fold(self) -> tuple[LazyFold, bool, bool, list[str]]:
        """Start a full sync's lazy fold and fold only as many services as it takes to
        decide large-cluster mode and staging (both only grow with the endpoint count);
        returns the fold, large, staged, and the ServicePortNames folded so far, sorted."""
        fold = LazyFold(self.tracker, self.snapshot)
        snapshot = self.snapshot
        endpoints = endpoint_count(snapshot)
        ready = sorted(snapshot.services)  # unchanged services, folded already
        new: list[str] = []
        while not fold.done and endpoints <= LARGE_CLUSTER_ENDPOINTS_THRESHOLD:
            keys = fold.next_ports()
            new += keys
            endpoints += sum(len(snapshot.endpoints[k]) for k in keys)
        large = endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
        staged = large or len(ready) + len(new) + endpoints > MULTI_COMMIT_CHAINS
        return fold, large, staged, ready + new

    async def _staged_sync(self, fold: LazyFold, ready: list[str], large: bool) -> tuple[RestorePlan, str, float]:
        """A large full sync: blocks computed batch by batch and streamed into one
        iptables-restore as they are made (see the module docstring). The services
        `fold` has not folded yet are folded batch by batch too."""
        saved = await self._saved()
        existing = self._existing_chains(saved)
        multi = await self._multi_commit()
        opener = getattr(self.iptables, "open_restore", None)  # test doubles may only `restore`
        setup = ""
        if self.iptables is not None:
            setup = await self._ensure_jumps(saved, existing)
        plan = RestorePlan()
        fixed = base_chains(self.cfg)
        plan.write[NAT].update(fixed[NAT])
        cfg, snapshot, pieces, nat = self.cfg, self.snapshot, self.pieces, plan.write[NAT]

        def key_batches() -> Iterator[list[str]]:
            for i in range(0, len(ready), BATCH_KEYS):
                yield ready[i:i + BATCH_KEYS]
            while not fold.done:
                keys: list[str] = []
                while not fold.done and len(keys) < BATCH_KEYS:
                    keys += fold.next_ports()
                yield keys

        def batches() -> Iterator[dict[str, tuple[str, ...]]]:
            for keys in key_batches():
                computed = compute_pieces(cfg, snapshot, keys, large)
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
        lanes: Lanes | None = None
        try:
            while True:
                t = time.perf_counter()
                text = next(blocks, None)
                compute_seconds += time.perf_counter() - t
                if text is None:
                    break
                if not parts:
                    self._first_block = time.perf_counter()
                parts.append(text)
                if opener is None:
                    continue
                if lanes is None:  # the fixed chains come first
                    lanes = await self._open_lanes(opener, setup + text, fixed[NAT].keys() <= existing[NAT], multi)
                elif top:  # the switch and what follows it need every service chain committed
                    await lanes.join()
                    await lanes.write(text)
                else:
                    await lanes.spread(text)
                if lanes.failed:
                    break  # close() reports the restore's error
            if lanes is not None:
                await lanes.close()
                lanes = None
        finally:
            if lanes is not None:
                await lanes.abort()
        t = time.perf_counter()
        joined = "".join(parts)
        compute_seconds += time.perf_counter() - t
        if self.iptables is not None and opener is None:
            await self.iptables.restore(setup + joined)
        return plan, joined, compute_seconds

    async def _open_lanes(self, opener: Callable[[], Awaitable[RestoreStream]], head: str, fixed_exist: bool,
                          multi: bool) -> Lanes:
        """The restores a staged sync streams into, the first one given `head` (the setup
        and the fixed chains). With nf_tables, service ports' blocks are spread over
        `RESTORE_LANES` restores; they jump to the fixed chains, so while those do not
        exist yet `head` is restored on its own first."""
        count = RESTORE_LANES if multi else 1
        if count > 1 and not fixed_exist:
            assert self.iptables is not None
            await self.iptables.restore(head)
            head = ""
        lanes = Lanes(await opener(), opener, count)
        if head:
            await lanes.write(head)
        return lanes

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
        # The shared top-level chains are joined from every service port (~5 ms for
        # 10,000): only when a changed port's share of them changed.
        fixed = self._fixed_chains() if self._top_level_changed(changed, old_pieces) else base_chains(self.cfg)
        for table, chains in fixed.items():
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

    def _top_level_changed(self, changed: set[str], old_pieces: dict[str, ServiceRules]) -> bool:
        """Whether the changed service ports' rules in the top-level chains changed (a port
        added or removed, or its KUBE-SERVICES / KUBE-NODEPORTS / filter rules): if not,
        those chains are still what was applied."""
        for key in changed:
            new, old = self.pieces.get(key), old_pieces.get(key)
            if new is None or old is None:
                if new is not old:
                    return True
                continue
            if (new.nat_services != old.nat_services or new.nat_nodeports != old.nat_nodeports
                    or new.filter_services != old.filter_services or new.filter_external != old.filter_external):
                return True
        return False

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
        saved = await asyncio.gather(*(self.iptables.save(t) for t in TABLES))  # one process each, at once
        return dict(zip(TABLES, saved))

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
        checks: dict[tuple[str, str], list[list[str]]] = {}  # per built-in chain, in order
        for table, builtin, args in jump_rules(self.cfg):
            head = f"-A {builtin} "
            target = args[-1]
            if any(line.startswith(head) and restore.jump_target(line) == target
                   for line in saved[table].splitlines()):
                checks.setdefault((table, builtin), []).append(args)
            else:
                words = (f'"{a}"' if " " in a else a for a in args)
                inserts[table].append(f"-I {builtin} 1 {' '.join(words)}")
        iptables = self.iptables

        async def ensure(table: str, builtin: str, rules: list[list[str]]) -> None:
            for args in rules:  # in order: each insert goes to the top of its chain
                await iptables.ensure_rule(table, builtin, args)
        # the built-in chains are checked at once (a process per check, ~8 of them)
        await asyncio.gather(*(ensure(table, builtin, rules) for (table, builtin), rules in checks.items()))
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
