"""Staged (multi-COMMIT) full syncs and large-cluster mode, checked against a small
model of `iptables-restore --noflush`: the staged text must leave the same rules as the
single-COMMIT one, and the table must be consistent after every COMMIT."""

from __future__ import annotations

import pytest

from tinykube.proxy.iptables import restore
from tinykube.proxy.iptables.proxier import RESTORE_LANES, IptablesProxier
from tinykube.proxy.iptables.restore import BLOCK_CHAINS, staged_blocks
from tinykube.proxy.iptables.rules import (
    FILTER,
    LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
    NAT,
    RuleConfig,
    compute_rules,
    large_cluster_mode,
)
from tinykube.proxy.iptables.runner import IptablesError
from tinykube.testing.services import endpoint_slice, service

CFG = RuleConfig(cluster_cidr="10.244.0.0/16")
TARGETS = ("ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "MARK", "MASQUERADE")


class RestoreModel:
    """What `iptables-restore --noflush` does to our chains, checking as it goes: a rule's
    chain and jump target exist by COMMIT, deleted chains are unreferenced, and after each
    COMMIT every jump of the table lands on an existing chain."""

    def __init__(self, tables: dict[str, dict[str, list[str]]] | None = None) -> None:
        self.tables = tables or {FILTER: {}, NAT: {}}
        self.commits = 0
        self.blocks: list[list[str]] = []  # chains declared by each COMMIT, in order

    def apply(self, text: str) -> None:
        table = None
        work: dict[str, list[str]] = {}
        declared: list[str] = []
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
                work = {c: list(r) for c, r in self.tables[table].items()}
                declared = []
            elif line.startswith(":"):
                name = line[1:].split()[0]
                work[name] = []
                declared.append(name)
            elif line.startswith("-A "):
                chain = line.split()[1]
                assert chain in work, f"rule for undeclared chain: {line}"
                work[chain].append(line)
            elif line.startswith("-X "):
                chain = line.split()[1]
                assert not work[chain], f"deleting non-empty {chain}"
                assert not any(restore.jump_target(r) == chain for rs in work.values() for r in rs), \
                    f"deleting referenced {chain}"
                del work[chain]
            elif line == "COMMIT":
                assert table is not None
                for rules in work.values():
                    for rule in rules:
                        target = restore.jump_target(rule)
                        assert target in TARGETS or target in work, f"jump to missing chain: {rule}"
                self.tables[table] = work
                self.blocks.append(declared)
                self.commits += 1
                table = None
        assert table is None, "text ends inside a table"


def populated(n: int, endpoints: int = 2, **kwargs: object) -> IptablesProxier:
    proxier = IptablesProxier(CFG, **kwargs)  # type: ignore[arg-type]
    for i in range(n):
        proxier.tracker.service_updated(service(f"s{i}", f"10.96.{i // 250}.{i % 250 + 1}"))
        proxier.tracker.slice_updated(endpoint_slice(
            f"s{i}", [f"10.244.{(i * endpoints + j) // 250}.{(i * endpoints + j) % 250 + 1}" for j in range(endpoints)]))
    return proxier


def normalised(tables: dict[str, dict[str, list[str]]] | dict[str, dict[str, tuple[str, ...]]]) -> dict:
    """Chains and rules; the top-level chains' jumps as a set with the last rule apart
    (their order is free but for KUBE-SERVICES' final KUBE-NODEPORTS jump)."""
    out: dict = {}
    for table, chains in tables.items():
        out[table] = {}
        for chain, rules in chains.items():
            rules = list(rules)
            if chain in (CFG.services, CFG.nodeports):
                out[table][chain] = (frozenset(rules[:-1]), rules[-1] if rules else None) \
                    if chain == CFG.services else (frozenset(rules), None)
            else:
                out[table][chain] = tuple(rules)
    return out


async def test_large_full_sync_is_staged_and_ends_as_the_single_commit_text() -> None:
    proxier = populated(600)  # 600 service ports + 1,200 endpoints: staged
    result = await proxier.sync()
    assert result.full and result.commits > 3
    model = RestoreModel()
    model.apply(result.text)
    assert model.commits == result.commits
    expected = compute_rules(CFG, proxier.snapshot)
    assert normalised(model.tables) == normalised(expected.tables)
    # the applied bookkeeping is the desired rule set
    assert proxier.applied == {t: dict(expected.tables[t]) for t in (FILTER, NAT)}

    # the same sync as one COMMIT per table leaves the same rules
    single = populated(600, multi_commit=False)
    one = await single.sync()
    assert one.commits == 2 and one.text.count("*nat") == 1
    model_one = RestoreModel()
    model_one.apply(one.text)
    assert normalised(model_one.tables) == normalised(model.tables)


async def test_staged_blocks_are_ordered_for_iptables_nft() -> None:
    proxier = populated(600)
    text = (await proxier.sync()).text
    blocks = [b for b in text.split("COMMIT\n") if b]
    nat_blocks = [b for b in blocks if b.startswith("*nat")]
    assert blocks[-1].startswith("*filter")  # the filter table comes after the nat switch
    # the first block holds the fixed chains service chains jump to
    assert f":{CFG.mark_masq} " in nat_blocks[0] and "SEP-" not in nat_blocks[0]
    model = RestoreModel()
    model.apply(text)
    switch = next(i for i, names in enumerate(model.blocks) if CFG.services in names)
    for names in model.blocks:
        assert names == sorted(names, reverse=True)  # declared in descending order
        assert len(names) < 2 * BLOCK_CHAINS
    # every service chain is declared before the switch
    assert all(not n.startswith(("KUBE-SEP-", "KUBE-SVC-")) for n in model.blocks[switch])
    assert {n for names in model.blocks[:switch] for n in names} >= {
        c for c in proxier.applied[NAT] if c.startswith(("KUBE-SEP-", "KUBE-SVC-"))}  # type: ignore[index]
    services = [line for line in nat_blocks[switch].splitlines() if line.startswith(f"-A {CFG.services} ")]
    assert "this must be the last rule" in services[-1]
    targets = [restore.jump_target(r) for r in services[:-1]]
    assert targets == sorted(targets, reverse=True)


def test_staged_blocks_with_synthetic_batches_and_many_stale_chains() -> None:
    fixed = {"K-MARK": ("-A K-MARK -j MARK --or-mark 0x4000",)}
    batches = [{f"K-SEP-{i:03d}": (f"-A K-SEP-{i:03d} -j K-MARK",),
                f"K-SVC-{i:03d}": (f"-A K-SVC-{i:03d} -j K-SEP-{i:03d}",)} for i in range(10)]
    stale = {f"K-OLD-{i:03d}" for i in range(700)}
    # stale chains jumping to each other and to the fixed chain, as old service chains do
    existing = {c: [f"-A {c} -j K-OLD-{int(c[-3:]) + 1:03d}"] if int(c[-3:]) < 699 else [f"-A {c} -j K-MARK"]
                for c in stale}
    existing["K-SERVICES"] = ["-A K-SERVICES -j K-OLD-000", "-A K-SERVICES -j K-NODEPORTS"]
    existing["K-NODEPORTS"] = []
    existing["K-MARK"] = []
    top = {"K-SERVICES": tuple(f"-A K-SERVICES -d 10.0.0.{i} -j K-SVC-{i:03d}" for i in range(10))
           + ("-A K-SERVICES -j K-NODEPORTS",), "K-NODEPORTS": ()}
    blocks = list(staged_blocks(fixed, batches, lambda: top, lambda: stale,
                                last_rule_chains=("K-SERVICES",), block_chains=8))
    model = RestoreModel({FILTER: {}, NAT: existing})
    for text in blocks:
        model.apply(text)
    nat = model.tables[NAT]
    assert not any(c.startswith("K-OLD-") for c in nat)
    assert nat["K-SERVICES"][-1] == "-A K-SERVICES -j K-NODEPORTS"
    assert len(nat) == 1 + 20 + 2
    # stale chains are flushed (all of them) before the first is deleted
    first_delete = next(i for i, b in enumerate(blocks) if "-X " in b)
    flushed = {line[1:].split()[0] for b in blocks[:first_delete] for line in b.splitlines() if line.startswith(":K-OLD")}
    assert flushed == stale
    # a handful of stale chains go in the switch block itself
    few = list(staged_blocks(fixed, batches, lambda: top, lambda: {"K-OLD-699"}, block_chains=8))
    assert "-X K-OLD-699" in few[-1] and ":K-SERVICES " in few[-1]


def test_single_commit_joins_blocks_per_table() -> None:
    blocks = ["*nat\n:A - [0:0]\nCOMMIT\n", "*nat\n:B - [0:0]\n-A B -j A\nCOMMIT\n", "*filter\n:F - [0:0]\nCOMMIT\n"]
    assert "".join(restore.single_commit(blocks)) == (
        "*nat\n:A - [0:0]\n:B - [0:0]\n-A B -j A\nCOMMIT\n*filter\n:F - [0:0]\nCOMMIT\n")


async def test_small_and_incremental_syncs_stay_one_commit_per_table() -> None:
    proxier = populated(50)
    assert (await proxier.sync()).commits == 2
    big = populated(600)
    await big.sync()
    big.tracker.slice_updated(endpoint_slice("s7", ["10.244.200.1", "10.244.200.2", "10.244.200.3"]))
    inc = await big.sync()
    assert not inc.full and inc.commits == 1


def test_large_cluster_mode_drops_only_the_endpoint_rule_comments() -> None:
    small = populated(LARGE_CLUSTER_ENDPOINTS_THRESHOLD // 2)  # exactly at the threshold: not large
    small.tracker.apply(small.snapshot)
    assert not large_cluster_mode(small.snapshot)
    nat = compute_rules(CFG, small.snapshot).tables[NAT]
    assert all("-m comment" in r for c, rs in nat.items() if c.startswith(("KUBE-SEP-", "KUBE-SVC-")) for r in rs)

    big = populated(LARGE_CLUSTER_ENDPOINTS_THRESHOLD // 2 + 1)
    big.tracker.apply(big.snapshot)
    assert large_cluster_mode(big.snapshot)
    nat = compute_rules(CFG, big.snapshot).tables[NAT]
    for chain, rules in nat.items():
        if chain.startswith("KUBE-SEP-"):
            assert all("-m comment" not in r for r in rules)
            assert rules[0].startswith(f"-A {chain} -s 10.244.")
        elif chain.startswith("KUBE-SVC-"):
            assert "cluster IP" in rules[0] and "-j KUBE-MARK-MASQ" in rules[0]  # kept, as upstream
            assert all("-m comment" not in r for r in rules[1:])
            assert "-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-" in rules[1]
    assert all("-m comment" in r for r in nat[CFG.services])


async def test_large_cluster_mode_is_reported_and_follows_the_endpoint_count() -> None:
    proxier = populated(600)
    assert (await proxier.sync()).large_cluster
    assert not (await populated(10).sync()).large_cluster


class StreamingIptables:
    """A runner double with `open_restore`: applies each block to a RestoreModel, and can
    fail at block `fail_at` the way iptables-restore does (exit 1, earlier COMMITs kept).

    A stream opened while none is open commits each block as it is written; one opened
    beside it commits only when closed (or the other way round with `eager_first=False`).
    Those are the two ends of what concurrent restores may do, so blocks that depend on
    another stream's must wait for its close.
    """

    def __init__(self, fail_at: int | None = None, eager_first: bool = True) -> None:
        self.model = RestoreModel()
        self.fail_at = fail_at
        self.eager_first = eager_first
        self.streams = 0
        self.blocks = 0
        self.open: list["StreamingIptables.Stream"] = []
        self.restores: list[str] = []

    async def open_restore(self) -> "StreamingIptables.Stream":
        self.streams += 1
        stream = StreamingIptables.Stream(self, eager=(not self.open) == self.eager_first)
        self.open.append(stream)
        return stream

    class Stream:
        def __init__(self, owner: "StreamingIptables", eager: bool) -> None:
            self.owner, self.eager, self.failed, self.closed = owner, eager, False, False
            self.written: list[str] = []
            self.queued: list[str] = []

        async def write(self, text: str) -> None:
            if self.failed:
                return
            self.owner.blocks += 1
            if self.owner.fail_at is not None and self.owner.blocks >= self.owner.fail_at:
                self.failed = True
                return
            self.written.append(text)
            if self.eager:
                self.owner.model.apply(text)
            else:
                self.queued.append(text)

        async def close(self) -> None:
            self._end()
            for text in self.queued:
                self.owner.model.apply(text)
            if self.failed:
                raise IptablesError("iptables-restore failed: line 3 failed")

        async def abort(self) -> None:
            self._end()

        def _end(self) -> None:
            self.closed = True
            if self in self.owner.open:
                self.owner.open.remove(self)

    async def restore(self, text: str) -> None:
        self.restores.append(text)
        self.model.apply(text)

    async def save(self, table: str) -> str:
        lines = [f"*{table}"] + [f":{c} - [0:0]" for c in self.model.tables[table]] + ["COMMIT"]
        return "\n".join(lines) + "\n"

    async def ensure_rule(self, *args: object) -> bool:
        return False

    async def chain_exists(self, table: str, chain: str) -> bool:
        return chain in self.model.tables[table]

    async def multi_commit(self) -> bool:
        return True


async def test_streamed_sync_deletes_stale_chains_of_an_earlier_run() -> None:
    fake = StreamingIptables()
    first = populated(600, iptables=fake, clear_conntrack=False)
    await first.sync()
    before = set(fake.model.tables[NAT])
    # a restarted proxy that sees only half of the services: the rest is stale
    second = populated(300, endpoints=3, iptables=fake, clear_conntrack=False)
    result = await second.sync()
    assert result.full and fake.streams == 2 * RESTORE_LANES
    expected = compute_rules(CFG, second.snapshot)
    assert normalised(fake.model.tables) == normalised(expected.tables)
    assert result.chains_deleted == len(before - set(expected.tables[NAT]))


async def test_second_restore_may_commit_first_once_the_fixed_chains_exist() -> None:
    """On an empty table the fixed chains are restored before the second restore starts:
    its blocks jump to KUBE-MARK-MASQ, and it may commit before the first restore does."""
    fake = StreamingIptables(eager_first=False)
    proxier = populated(600, iptables=fake, clear_conntrack=False)
    result = await proxier.sync()
    assert result.full and fake.streams == RESTORE_LANES
    assert len(fake.restores) == (1 if RESTORE_LANES > 1 else 0)
    assert normalised(fake.model.tables) == normalised(compute_rules(CFG, proxier.snapshot).tables)
    again = populated(600, endpoints=3, iptables=fake, clear_conntrack=False)
    await again.sync()  # the fixed chains exist now: no separate restore
    assert len(fake.restores) == (1 if RESTORE_LANES > 1 else 0)
    assert normalised(fake.model.tables) == normalised(compute_rules(CFG, again.snapshot).tables)


async def test_failed_stream_raises_and_next_sync_is_full() -> None:
    fake = StreamingIptables(fail_at=3)
    proxier = populated(600, iptables=fake, clear_conntrack=False)
    with pytest.raises(IptablesError, match="line 3 failed"):
        await proxier.sync()
    assert proxier.applied is None
    # the services the sync had not folded yet stay pending
    assert proxier.tracker.pending and len(proxier.snapshot.services) < 600
    fake.fail_at = None
    result = await proxier.sync()
    assert result.full and len(proxier.snapshot.services) == 600 and not proxier.tracker.pending
    assert normalised(fake.model.tables) == normalised(compute_rules(CFG, proxier.snapshot).tables)


async def test_full_sync_streams_its_first_block_before_folding_every_service() -> None:
    fake = StreamingIptables()
    proxier = populated(600, iptables=fake, clear_conntrack=False)
    folded_at_write: list[int] = []
    opener = fake.open_restore

    async def open_restore() -> StreamingIptables.Stream:
        stream = await opener()
        write = stream.write

        async def recording_write(text: str) -> None:
            folded_at_write.append(len(proxier.snapshot.services))
            await write(text)
        stream.write = recording_write  # type: ignore[method-assign]
        return stream
    fake.open_restore = open_restore  # type: ignore[method-assign]
    result = await proxier.sync()
    assert result.full and result.large_cluster and result.first_block_seconds is not None
    # large-cluster mode (1,000+ endpoints) is known after ~500 services; the rest are
    # folded while the blocks are written
    assert folded_at_write[0] < 600 and len(proxier.snapshot.services) == 600
    assert not proxier.tracker.pending
    assert normalised(fake.model.tables) == normalised(compute_rules(CFG, proxier.snapshot).tables)
    assert proxier.applied == {t: dict(compute_rules(CFG, proxier.snapshot).tables[t]) for t in (FILTER, NAT)}


async def test_endpoint_count_is_kept_across_incremental_syncs() -> None:
    proxier = populated(600)
    await proxier.sync()
    # 1,200 endpoints; 958 after the first change, 798 after the second, 1,098 after the third
    for i in range(120):
        proxier.tracker.slice_updated(endpoint_slice(f"s{i}", []))
    proxier.tracker.service_updated(None, key="default/s599")
    result = await proxier.sync()
    assert not result.full
    assert result.large_cluster == large_cluster_mode(proxier.snapshot)
    for i in range(120, 200):
        proxier.tracker.slice_updated(endpoint_slice(f"s{i}", []))
    result = await proxier.sync()
    assert not result.large_cluster and not large_cluster_mode(proxier.snapshot)
    proxier.tracker.service_updated(service("s599", "10.96.2.100"))
    proxier.tracker.slice_updated(endpoint_slice("s599", [f"10.245.{j // 250}.{j % 250 + 1}" for j in range(300)]))
    result = await proxier.sync()
    assert result.large_cluster and large_cluster_mode(proxier.snapshot)


def test_cleanup_blocks_flush_everything_before_deleting() -> None:
    chains = {f"K-SVC-{i:04d}": [f"-A K-SVC-{i:04d} -j K-SEP-{i:04d}"] for i in range(700)}
    chains.update({f"K-SEP-{i:04d}": [f"-A K-SEP-{i:04d} -j K-MARK"] for i in range(700)})
    chains["K-MARK"] = ["-A K-MARK -j MARK --or-mark 0x4000"]
    model = RestoreModel({FILTER: {"K-F": []}, NAT: chains})
    blocks = list(restore.cleanup_blocks({NAT: set(chains), FILTER: {"K-F"}}))
    for text in blocks:
        model.apply(text)
    assert model.tables == {FILTER: {}, NAT: {}}
    assert len(blocks) == 2 * -(-len(chains) // BLOCK_CHAINS) + 2
