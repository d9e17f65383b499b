"""The iptables proxier: turns tracked changes into partial `iptables-restore` runs.

A sync folds the pending changes into the snapshot, recomputes the rules of only the
changed service ports, and writes the shared top-level chains plus the changed chains;
chains no longer wanted are deleted in the same atomic restore. The first sync (and any
sync after a failure) is a full one that also removes leftovers of earlier runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from tinykube.proxy import conntrack
from tinykube.proxy.changes import AppliedChanges, ChangeTracker, fold_changes
from tinykube.proxy.iptables import restore
from tinykube.proxy.iptables.restore import TABLES, RestorePlan
from tinykube.proxy.iptables.rules import (
    NAT,
    RuleConfig,
    RuleSet,
    ServiceRules,
    base_chains,
    compute_pieces,
    jump_rules,
    top_level_chains,
)
from tinykube.proxy.iptables.runner import Iptables, IptablesError
from tinykube.proxy.metrics import ProxyMetrics
from tinykube.proxy.model import Snapshot

log = logging.getLogger(__name__)

FULL_SYNC_PERIOD = 3600.0  # upstream forces a full sync at least hourly


@dataclass
class SyncResult:
    """Figures of one sync, for metrics, benchmarks and tests."""

    full: bool
    chains_written: int
    chains_deleted: int
    rules_written: int
    compute_seconds: float
    restore_seconds: float
    text: str = field(repr=False)
    rules_by_table: dict[str, int]


class IptablesProxier:
    """Owns the desired state and what was last applied; `sync()` reconciles them."""

    def __init__(
        self,
        cfg: RuleConfig,
        iptables: Iptables | None = None,
        metrics: ProxyMetrics | None = None,
        clear_conntrack: bool = True,
    ) -> None:
        self.cfg = cfg
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
        fold = fold_changes(self.tracker, self.snapshot, self.pieces, full,
                            lambda keys: compute_pieces(self.cfg, self.snapshot, keys))
        if full:
            plan = restore.plan(self._desired_fixed_and_all(), None, await self._existing_chains())
        else:
            plan = self._partial_plan(fold.keys, fold.old_pieces)
        compute_done = time.perf_counter()
        text = plan.render()
        if self.iptables is not None and not plan.empty:
            try:
                if full:
                    await self._ensure_jumps()
                await self.iptables.restore(text)
            except IptablesError:
                self.applied = None  # the kernel state is unknown: next sync is a full one
                if self.metrics:
                    self.metrics.restore_failures.inc()
                raise
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
            compute_seconds=compute_done - start,
            restore_seconds=restore_done - compute_done,
            text=text,
            rules_by_table={t: sum(len(r) for r in plan.write[t].values()) for t in TABLES},
        )
        self._observe(result, fold.changes, time.perf_counter() - start)
        self.last_result = result
        return result

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

    async def _existing_chains(self) -> dict[str, set[str]]:
        """Our chains already in the kernel (from a previous run), to delete stale ones."""
        if self.iptables is None:
            return {t: set() for t in TABLES}
        return {t: restore.parse_chains(await self.iptables.save(t), self.cfg.chain_prefix) for t in TABLES}

    async def _ensure_jumps(self) -> None:
        """Create our top-level chains, then hook them into the built-in chains."""
        assert self.iptables is not None
        create = RestorePlan()
        for table, chains in self._fixed_chains().items():
            create.write[table] = {c: () for c in chains}
        existing = await self._existing_chains()
        for table in TABLES:
            create.write[table] = {c: () for c in create.write[table] if c not in existing[table]}
        if not create.empty:
            await self.iptables.restore(create.render())
        for table, builtin, args in jump_rules(self.cfg):
            await self.iptables.ensure_rule(table, builtin, args)

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
    """Delete our jumps from the built-in chains, then flush and delete all our chains."""
    for table, builtin, args in jump_rules(cfg):
        await iptables.delete_rule(table, builtin, args)
    existing = {t: restore.parse_chains(await iptables.save(t), cfg.chain_prefix) for t in TABLES}
    plan = restore.cleanup_plan(existing)
    if not plan.empty:
        await iptables.restore(plan.render())
    return sum(len(c) for c in existing.values())
