"""The nftables proxier. A full sync recreates the table in one transaction whose text is
streamed into `nft -f -` while it is computed (services folded lazily, `LazyFold`), so
nft parses while Python computes; nft commits the whole transaction atomically at the
end. A partial sync writes only the changed chains and adds/deletes only the changed
map and set elements (bookkeeping is per changed service port, never over all ports)."""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import Iterator

from tinykube.proxy import conntrack
from tinykube.proxy.changes import ChangeTracker, Fold, LazyFold
from tinykube.proxy.metrics import ProxyMetrics
from tinykube.proxy.model import Snapshot
from tinykube.proxy.nftables.rules import (
    HAIRPIN, MAPS, SETS, NftConfig, NftPiece, base_chains, compute_pieces, service_port_piece,
)
from tinykube.proxy.stream import InputStream

log = logging.getLogger(__name__)

BATCH = 600  # chains (and sets) per chunk written into nft's stdin during a full sync


class NftError(RuntimeError):
    """`nft` failed; carries its stderr."""


class NftStream(InputStream):
    """One running `nft -f -`: `write` text into it while computing, then `close`, which
    waits for nft to parse and commit everything as one transaction; `abort` kills nft
    before it commits, so nothing of the transaction is applied."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__(proc, lambda err: NftError(f"nft -f failed: {err[:2000]}"))


class Nft:
    """Runs `nft -f -` (optionally inside a network namespace)."""

    def __init__(self, netns: str | None = None) -> None:
        self._prefix = ["ip", "netns", "exec", netns] if netns else []

    @staticmethod
    def available() -> bool:
        return shutil.which("nft") is not None

    async def run(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            *self._prefix, "nft", *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        return proc.returncode or 0, out.decode(), err.decode()

    async def apply(self, text: str) -> None:
        code, _, err = await self.run("-f", "-", stdin=text)
        if code != 0:
            raise NftError(f"nft -f failed: {err.strip()[:2000]}")

    async def open(self) -> NftStream:
        proc = await asyncio.create_subprocess_exec(
            *self._prefix, "nft", "-f", "-", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        return NftStream(proc)

    async def table_exists(self, table: str) -> bool:
        return (await self.run("list", "table", "ip", table))[0] == 0


@dataclass
class NftSyncResult:
    full: bool
    chains_written: int
    chains_deleted: int
    elements_changed: int
    compute_seconds: float  # time spent computing (overlaps nft's parsing in a full sync)
    restore_seconds: float  # the rest of the sync: waiting for nft
    text: str = field(repr=False)


@dataclass
class Applied:
    """What the kernel holds (as far as we wrote it). A map key claimed by several service
    ports (a misconfiguration) takes the verdict of the smallest port key."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: dict[str, int] = field(default_factory=dict)
    claims: dict[str, dict[str, dict[str, str]]] = field(
        default_factory=lambda: {m: {} for m in MAPS})  # map -> key -> port key -> verdict
    hairpin: dict[str, int] = field(default_factory=dict)  # endpoint IP -> port count

    @property
    def elements(self) -> dict[str, dict[str, str]]:
        """map -> key -> verdict in effect."""
        return {m: {k: _effective(c) for k, c in claims.items()} for m, claims in self.claims.items()}

    def add(self, port_key: str, piece: NftPiece) -> None:
        self.chains.update(piece.chains)
        self.sets.update(piece.sets)
        for m, elems in piece.elements.items():
            claims = self.claims[m]
            for k, v in elems.items():
                c = claims.get(k)
                if c is None:
                    claims[k] = {port_key: v}
                else:
                    c[port_key] = v
        hairpin = self.hairpin
        for ip in piece.hairpin:
            hairpin[ip] = hairpin.get(ip, 0) + 1

    def remove(self, port_key: str, piece: NftPiece) -> None:
        for name in piece.chains:
            self.chains.pop(name, None)
        for name in piece.sets:
            self.sets.pop(name, None)
        for m, elems in piece.elements.items():
            claims = self.claims[m]
            for k in elems:
                c = claims.get(k)
                if c is not None:
                    c.pop(port_key, None)
                    if not c:
                        del claims[k]
        hairpin = self.hairpin
        for ip in piece.hairpin:
            n = hairpin.get(ip, 0) - 1
            if n > 0:
                hairpin[ip] = n
            else:
                hairpin.pop(ip, None)


def _effective(claims: dict[str, str]) -> str:
    return next(iter(claims.values())) if len(claims) == 1 else claims[min(claims)]


class NftablesProxier:
    """Same interface as the iptables proxier: `tracker`, `snapshot`, `sync()`, `cleanup()`."""

    def __init__(self, cfg: NftConfig, nft: Nft | None = None, metrics: ProxyMetrics | None = None,
                 clear_conntrack: bool = True) -> None:
        self.cfg = cfg
        self.nft = nft
        self.metrics = metrics
        self.clear_conntrack = clear_conntrack
        self.tracker = ChangeTracker()
        self.snapshot = Snapshot()
        self.pieces: dict[str, NftPiece] = {}
        self.applied: Applied | None = None
        self.last_result: NftSyncResult | None = None

    async def sync(self) -> NftSyncResult:
        start = time.perf_counter()
        if self.applied is not None and self.nft is not None and not self.tracker.pending:
            if not await self.nft.table_exists(self.cfg.table):
                log.warning("table ip %s is gone: doing a full sync", self.cfg.table)
                self.applied = None
        full = self.applied is None
        fold: Fold[NftPiece] | LazyFold
        try:
            if full:
                fold = LazyFold(self.tracker, self.snapshot)
                result = await self._full_sync(fold, start)
            else:
                changes = self.tracker.apply(self.snapshot)
                keys = changes.port_keys
                fold = Fold(changes, keys, {k: self.pieces.pop(k) for k in keys if k in self.pieces})
                result = await self._partial_sync(fold, start)
        except BaseException as e:
            self.applied = None  # the kernel state is unknown: the next sync is a full one
            if isinstance(e, NftError) and self.metrics:
                self.metrics.restore_failures.inc()
            raise
        if self.nft is not None and self.clear_conntrack:
            await conntrack.delete_flows(fold.stale_flows(self.snapshot))
        if self.metrics is not None:
            self.metrics.observe_sync(full, fold.changes, time.perf_counter() - start)
        self.last_result = result
        return result

    async def _full_sync(self, fold: LazyFold, start: float) -> NftSyncResult:
        t, cfg = self.cfg.table, self.cfg
        snapshot, pieces = self.snapshot, self.pieces
        pieces.clear()
        desired = Applied()
        stream = await self.nft.open() if self.nft is not None else None
        compute = 0.0
        chunks: list[str] = []
        out = [f"add table ip {t}", f"delete table ip {t}", f"table ip {t} {{"]
        for name, (decl, rules) in base_chains(cfg).items():
            body = ([decl] if decl else []) + list(rules)
            out.append(f"chain {name} {{ " + " ; ".join(body) + " ; }")
        for name, spec in MAPS.items():
            out.append(f"map {name} {{ type {spec} ; }}")
        for name, spec in SETS.items():
            out.append(f"set {name} {{ type {spec} ; }}")
        out.append("}")
        paused_gc = gc.isenabled()
        if paused_gc:
            gc.disable()  # hundreds of thousands of small objects: collect once, after
        try:
            mark = time.perf_counter()
            unchanged = sorted(snapshot.services)  # folded by earlier syncs: taken first

            def port_keys() -> Iterator[str]:
                yield from unchanged
                while not fold.done:
                    yield from fold.next_ports()

            block: list[str] = []
            for key in port_keys():
                piece = service_port_piece(cfg, snapshot.services[key], snapshot.endpoints.get(key, ()))
                pieces[key] = piece
                desired.add(key, piece)
                for name, timeout in piece.sets.items():
                    block.append(f"set {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}")
                for name, rules in piece.chains.items():
                    block.append(f"chain {name} {{ " + " ; ".join(rules) + " ; }")
                if len(block) >= BATCH:
                    out += [f"table ip {t} {{", *block, "}"]
                    text = "\n".join(out) + "\n"
                    block, out = [], []
                    chunks.append(text)
                    if stream is not None:
                        compute += time.perf_counter() - mark
                        await stream.write(text)
                        mark = time.perf_counter()
            if block:
                out += [f"table ip {t} {{", *block, "}"]
            for m, claims in desired.claims.items():
                if claims:
                    out.append(f"add element ip {t} {m} {{ "
                               + " , ".join(f"{k} : {_effective(c)}" for k, c in claims.items()) + " }")
            if desired.hairpin:
                out.append(f"add element ip {t} {HAIRPIN} {{ " + " , ".join(f"{ip} . {ip}" for ip in desired.hairpin) + " }")
            text = "\n".join(out) + "\n"
            chunks.append(text)
            compute += time.perf_counter() - mark
            if stream is not None:
                await stream.write(text)
                await stream.close()
                stream = None
        finally:
            if stream is not None:
                await stream.abort()
            if not fold.done:
                fold.abandon()  # what was not folded stays pending for the next sync
            if paused_gc:
                gc.enable()
        self.applied = desired
        elements = sum(len(c) for c in desired.claims.values()) + len(desired.hairpin)
        wall = time.perf_counter() - start
        return NftSyncResult(True, len(desired.chains), 0, elements, compute, wall - compute, "".join(chunks))

    async def _partial_sync(self, fold: Fold[NftPiece], start: float) -> NftSyncResult:
        assert self.applied is not None
        t, applied = self.cfg.table, self.applied
        keys, old_pieces = fold.keys, fold.old_pieces
        new_pieces = compute_pieces(self.cfg, self.snapshot, keys)
        self.pieces.update(new_pieces)
        before_chains = {n: applied.chains[n] for p in old_pieces.values() for n in p.chains if n in applied.chains}
        before_sets = {n for p in old_pieces.values() for n in p.sets if n in applied.sets}
        touched: dict[str, dict[str, str | None]] = {m: {} for m in MAPS}  # key -> verdict before
        touched_ips: dict[str, bool] = {}  # ip -> was in the hairpin set
        for piece in (*old_pieces.values(), *new_pieces.values()):
            for m, elems in piece.elements.items():
                claims, seen = applied.claims[m], touched[m]
                for k in elems:
                    if k not in seen:
                        c = claims.get(k)
                        seen[k] = None if c is None else _effective(c)
            for ip in piece.hairpin:
                touched_ips.setdefault(ip, ip in applied.hairpin)
        for k, p in old_pieces.items():
            applied.remove(k, p)
        for k, p in new_pieces.items():
            applied.add(k, p)
        out: list[str] = []
        new_sets = [n for p in new_pieces.values() for n in p.sets if n not in before_sets]
        for n in new_sets:
            out.append(f"add set ip {t} {n} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {applied.sets[n]}s ; }}")
        changed = {n: r for p in new_pieces.values() for n, r in p.chains.items() if before_chains.get(n) != r}
        for n in changed:
            out.append(f"flush chain ip {t} {n}" if n in before_chains else f"add chain ip {t} {n}")
        for n, rules in changed.items():
            out.extend(f"add rule ip {t} {n} {r}" for r in rules)
        elements = 0
        for m, seen in touched.items():
            claims = applied.claims[m]
            now = {k: (_effective(claims[k]) if k in claims else None) for k in seen}
            gone = [k for k, v in seen.items() if v is not None and now[k] != v]
            added = [k for k, v in now.items() if v is not None and seen[k] != v]
            if gone:
                out.append(f"delete element ip {t} {m} {{ " + " , ".join(gone) + " }")
            if added:
                out.append(f"add element ip {t} {m} {{ " + " , ".join(f"{k} : {now[k]}" for k in added) + " }")
            elements += len(gone) + len(added)
        ips_gone = [ip for ip, was in touched_ips.items() if was and ip not in applied.hairpin]
        ips_added = [ip for ip, was in touched_ips.items() if not was and ip in applied.hairpin]
        if ips_gone:
            out.append(f"delete element ip {t} {HAIRPIN} {{ " + " , ".join(f"{ip} . {ip}" for ip in ips_gone) + " }")
        if ips_added:
            out.append(f"add element ip {t} {HAIRPIN} {{ " + " , ".join(f"{ip} . {ip}" for ip in ips_added) + " }")
        elements += len(ips_gone) + len(ips_added)
        stale = [n for n in before_chains if n not in applied.chains]
        out.extend(f"flush chain ip {t} {n}" for n in stale)
        out.extend(f"delete chain ip {t} {n}" for n in stale)
        out.extend(f"delete set ip {t} {n}" for n in before_sets if n not in applied.sets)
        text = "\n".join(out) + "\n" if out else ""
        compute_done = time.perf_counter()
        if self.nft is not None and text:
            await self.nft.apply(text)
        done = time.perf_counter()
        return NftSyncResult(False, len(changed), len(stale), elements, compute_done - start,
                             done - compute_done, text)

    async def cleanup(self) -> None:
        await cleanup(self.cfg.table, self.nft or Nft())
        self.applied = None


async def cleanup(table: str, nft: Nft) -> bool:
    """Delete our table (everything nftables mode installed); True if it existed."""
    if not await nft.table_exists(table):
        return False
    await nft.apply(f"delete table ip {table}\n")
    return True
