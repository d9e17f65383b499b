"""The nftables proxier: full syncs recreate the table in one transaction; partial syncs
rewrite changed chains and add/delete only the map elements that changed."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field

from tinykube.proxy import conntrack
from tinykube.proxy.changes import ChangeTracker, fold_changes
from tinykube.proxy.metrics import ProxyMetrics
from tinykube.proxy.model import Snapshot
from tinykube.proxy.nftables.rules import MAPS, NftConfig, NftPiece, base_chains, compute_pieces

log = logging.getLogger(__name__)


class NftError(RuntimeError):
    """`nft` failed; carries its stderr."""


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

    async def table_exists(self, table: str) -> bool:
        return (await self.run("list", "table", "ip", table))[0] == 0


@dataclass
class NftSyncResult:
    full: bool
    chains_written: int
    chains_deleted: int
    elements_changed: int
    compute_seconds: float
    restore_seconds: float
    text: str = field(repr=False)


@dataclass
class Applied:
    """What the kernel holds (as far as we wrote it)."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: dict[str, int] = field(default_factory=dict)
    elements: dict[str, dict[str, str]] = field(default_factory=lambda: {m: {} for m in MAPS})


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
        fold = fold_changes(self.tracker, self.snapshot, self.pieces, full,
                            lambda keys: compute_pieces(self.cfg, self.snapshot, keys))
        desired = self._desired()
        text, written, deleted, elements = (
            self._full_text(desired) if full
            else self._partial_text(desired, fold.keys, fold.old_pieces))
        compute_done = time.perf_counter()
        if self.nft is not None and text:
            try:
                await self.nft.apply(text)
            except NftError:
                self.applied = None
                if self.metrics:
                    self.metrics.restore_failures.inc()
                raise
        restore_done = time.perf_counter()
        self.applied = desired
        if self.nft is not None and self.clear_conntrack:
            await conntrack.delete_flows(fold.stale_flows(self.snapshot))
        result = NftSyncResult(full, written, deleted, elements, compute_done - start,
                               restore_done - compute_done, text)
        if self.metrics is not None:
            self.metrics.observe_sync(full, fold.changes, time.perf_counter() - start)
        self.last_result = result
        return result

    def _desired(self) -> Applied:
        desired = Applied()
        for piece in self.pieces.values():
            desired.chains.update(piece.chains)
            desired.sets.update(piece.sets)
            for m, elems in piece.elements.items():
                desired.elements[m].update(elems)
        return desired

    def _full_text(self, desired: Applied) -> tuple[str, int, int, int]:
        t = self.cfg.table
        out = [f"add table ip {t}", f"delete table ip {t}", f"add table ip {t}"]
        for name, (decl, rules) in base_chains(self.cfg).items():
            out.append(f"add chain ip {t} {name} {{ {decl} ; }}" if decl else f"add chain ip {t} {name}")
        for name, spec in MAPS.items():
            out.append(f"add map ip {t} {name} {{ type {spec} ; }}")
        for name, timeout in sorted(desired.sets.items()):
            out.append(_set_decl(t, name, timeout))
        for name in sorted(desired.chains):
            out.append(f"add chain ip {t} {name}")
        for name, (_, rules) in base_chains(self.cfg).items():
            out.extend(f"add rule ip {t} {name} {r}" for r in rules)
        for name in sorted(desired.chains):
            out.extend(f"add rule ip {t} {name} {r}" for r in desired.chains[name])
        count = 0
        for m, elems in desired.elements.items():
            if elems:
                out.append(f"add element ip {t} {m} {{ " + " , ".join(f"{k} : {v}" for k, v in elems.items()) + " }")
                count += len(elems)
        return "\n".join(out) + "\n", len(desired.chains), 0, count

    def _partial_text(self, desired: Applied, keys: set[str], old_pieces: dict[str, NftPiece]) -> tuple[str, int, int, int]:
        assert self.applied is not None
        t, before = self.cfg.table, self.applied
        out: list[str] = []
        new_sets = {n: s for n, s in desired.sets.items() if n not in before.sets}
        out.extend(_set_decl(t, n, s) for n, s in new_sets.items())
        changed = {}
        for key in keys:
            piece = self.pieces.get(key)
            for name, rules in (piece.chains.items() if piece else ()):
                if before.chains.get(name) != rules:
                    changed[name] = rules
        for name in changed:
            out += [f"add chain ip {t} {name}", f"flush chain ip {t} {name}"]
        for name, rules in changed.items():
            out.extend(f"add rule ip {t} {name} {r}" for r in rules)
        elements = 0
        for m in MAPS:
            old, new = before.elements[m], desired.elements[m]
            gone = [k for k, v in old.items() if new.get(k) != v]
            added = [k for k, v in new.items() if old.get(k) != v]
            if gone:
                out.append(f"delete element ip {t} {m} {{ " + " , ".join(gone) + " }")
            if added:
                out.append(f"add element ip {t} {m} {{ " + " , ".join(f"{k} : {new[k]}" for k in added) + " }")
            elements += len(gone) + len(added)
        stale = [n for p in old_pieces.values() for n in p.chains if n not in desired.chains and n in before.chains]
        out.extend(f"flush chain ip {t} {n}" for n in stale)
        out.extend(f"delete chain ip {t} {n}" for n in stale)
        stale_sets = [n for p in old_pieces.values() for n in p.sets if n not in desired.sets and n in before.sets]
        out.extend(f"delete set ip {t} {n}" for n in stale_sets)
        return ("\n".join(out) + "\n" if out else ""), len(changed), len(stale), elements

    async def cleanup(self) -> None:
        await cleanup(self.cfg.table, self.nft or Nft())
        self.applied = None


def _set_decl(table: str, name: str, timeout: int) -> str:
    return f"add set ip {table} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"


async def cleanup(table: str, nft: Nft) -> bool:
    """Delete our table (everything nftables mode installed); True if it existed."""
    if not await nft.table_exists(table):
        return False
    await nft.apply(f"delete table ip {table}\n")
    return True
