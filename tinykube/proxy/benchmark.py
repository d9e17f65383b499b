"""`sync_benchmark`: how long kube-proxy's iptables syncs take for N Services.

It measures a full sync (all chains) and an incremental one (one service's endpoints
change) of the real iptables proxier, or of the nftables proxier with `binary="nft"`
(where "rules" counts service chain rules plus verdict-map elements). With `netns` set, the restore text is also applied with the
real `iptables-restore` inside that network namespace, so the host's tables are untouched.

`*_seconds` is the sync's wall time; with iptables a large full sync streams its
blocks into iptables-restore while computing, so there `compute` and `restore` overlap
and `*_compute_seconds` + `*_restore_seconds` is the wall time (see `SyncResult`).
`*_cpu_seconds` is this process's CPU time, the robust figure on a busy host;
`*_restore_cpu_seconds` the CPU time of the iptables-save/-restore (or nft) processes the
sync ran (None without `netns`).
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import asdict, dataclass

from tinykube.testing.services import endpoint_slice, service
from tinykube.proxy.iptables.proxier import IptablesProxier, SyncResult
from tinykube.proxy.iptables.rules import RuleConfig
from tinykube.proxy.iptables.runner import Iptables
from tinykube.proxy.nftables.proxier import Applied, Nft, NftablesProxier, NftSyncResult
from tinykube.proxy.nftables.rules import NftConfig


@dataclass
class SyncFigures:
    services: int
    endpoints_per_service: int
    rules: int
    full_seconds: float
    full_commits: int | None  # COMMIT blocks of the iptables full sync (None: nftables)
    full_compute_seconds: float
    full_first_block_seconds: float | None  # a staged iptables full sync: start to first block
    full_cpu_seconds: float
    full_restore_seconds: float | None
    full_restore_cpu_seconds: float | None
    full_restore_bytes: int
    incremental_seconds: float
    incremental_compute_seconds: float
    incremental_cpu_seconds: float
    incremental_restore_seconds: float | None
    incremental_restore_cpu_seconds: float | None
    incremental_chains_written: int
    incremental_restore_bytes: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _cluster_ip(i: int) -> str:
    return f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256}"


def _pod_ip(i: int, j: int) -> str:
    n = i * 16 + j
    return f"10.{128 + n // 65536}.{(n // 256) % 256}.{n % 256}"


def populate(proxier: IptablesProxier | NftablesProxier, n_services: int, endpoints_per_service: int) -> None:
    for i in range(n_services):
        name = f"svc-{i}"
        proxier.tracker.service_updated(service(name, _cluster_ip(i + 1), namespace="bench"))
        proxier.tracker.slice_updated(endpoint_slice(
            name, [_pod_ip(i, j) for j in range(endpoints_per_service)], namespace="bench"))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _timed_sync(proxier: IptablesProxier | NftablesProxier
                      ) -> tuple[SyncResult | NftSyncResult, float, float, float]:
    """A sync, its wall time, the CPU time this process spent on it (robust on a busy
    host) and the CPU time of the processes it ran (iptables-restore, ...)."""
    start, wall, children = time.process_time(), time.perf_counter(), _children_cpu()
    result = await proxier.sync()
    return result, time.perf_counter() - wall, time.process_time() - start, _children_cpu() - children


async def run_sync_benchmark(n_services: int, endpoints_per_service: int = 2,
                             netns: str | None = None, binary: str = "iptables") -> SyncFigures:
    """`binary` is `iptables`, `iptables-legacy` or `nft` (the nftables mode)."""
    proxier: IptablesProxier | NftablesProxier
    if binary == "nft":
        proxier = NftablesProxier(NftConfig(cluster_cidr="10.128.0.0/10"), Nft(netns) if netns else None,
                                  clear_conntrack=False)
    else:
        proxier = IptablesProxier(RuleConfig(cluster_cidr="10.128.0.0/10"),
                                  Iptables(binary, netns=netns) if netns else None, clear_conntrack=False)
    populate(proxier, n_services, endpoints_per_service)
    full, full_wall, full_cpu, full_children = await _timed_sync(proxier)
    # one service gains an endpoint: the incremental case
    i = n_services // 2
    proxier.tracker.slice_updated(endpoint_slice(
        f"svc-{i}", [_pod_ip(i, j) for j in range(endpoints_per_service + 1)], namespace="bench"))
    inc, inc_wall, inc_cpu, inc_children = await _timed_sync(proxier)
    return SyncFigures(
        services=n_services,
        endpoints_per_service=endpoints_per_service,
        rules=_rule_count(proxier),
        full_seconds=full_wall,
        full_commits=full.commits if isinstance(full, SyncResult) else None,
        full_compute_seconds=full.compute_seconds,
        full_first_block_seconds=getattr(full, "first_block_seconds", None),
        full_cpu_seconds=full_cpu,
        full_restore_seconds=full.restore_seconds if netns else None,
        full_restore_cpu_seconds=full_children if netns else None,
        full_restore_bytes=len(full.text),
        incremental_seconds=inc_wall,
        incremental_compute_seconds=inc.compute_seconds,
        incremental_cpu_seconds=inc_cpu,
        incremental_restore_seconds=inc.restore_seconds if netns else None,
        incremental_restore_cpu_seconds=inc_children if netns else None,
        incremental_chains_written=inc.chains_written,
        incremental_restore_bytes=len(inc.text),
    )


def _rule_count(proxier: IptablesProxier | NftablesProxier) -> int:
    applied = proxier.applied
    if isinstance(applied, Applied):
        return sum(len(r) for r in applied.chains.values()) + sum(len(e) for e in applied.elements.values())
    assert applied is not None
    return sum(len(r) for t in applied.values() for r in t.values())


def sync_benchmark(n_services: int, endpoints_per_service: int = 2, netns: str | None = None,
                   binary: str = "iptables") -> SyncFigures:
    """Figures of a full and an incremental sync for `n_services` Services."""
    return asyncio.run(run_sync_benchmark(n_services, endpoints_per_service, netns, binary))
