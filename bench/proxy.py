"""kube-proxy sync time for 1,000 and 10,000 Services: full iptables sync and incremental.

    python3 bench/proxy.py                       # compute only (no root needed)
    python3 bench/proxy.py --restore             # also real iptables-restore, in a private netns
    python3 bench/proxy.py --restore --binary iptables-legacy
    python3 bench/proxy.py --restore --binary nft    # the nftables mode

Goals: a full sync of 10,000 Services under 2 s, an incremental one under 100 ms.
With --restore the rules go into a network namespace created for the run (and deleted
after), never into the host's tables. "full" is the sync's wall time: a large iptables
full sync streams its COMMIT blocks into iptables-restore while computing them, so its
compute and restore overlap (compute + restore = full); "commits" counts its COMMITs.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import subprocess

from cpustat import StealShare

from tinykube.proxy.benchmark import SyncFigures, run_sync_benchmark


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def _commits(n: int | None) -> str:
    return "" if n is None else f"{n} commits, "


def report(f: SyncFigures) -> str:
    return (
        f"{f.services:>6} services x {f.endpoints_per_service} endpoints, {f.rules} rules: "
        f"full {_ms(f.full_seconds)} (first block {_ms(f.full_first_block_seconds)}, compute {_ms(f.full_compute_seconds)}, cpu {_ms(f.full_cpu_seconds)}; "
        f"restore {_ms(f.full_restore_seconds)}, restore cpu {_ms(f.full_restore_cpu_seconds)}; {_commits(f.full_commits)}{f.full_restore_bytes / 1e6:.1f} MB); "
        f"incremental {_ms(f.incremental_seconds)} (compute {_ms(f.incremental_compute_seconds)}, "
        f"cpu {_ms(f.incremental_cpu_seconds)}; restore {_ms(f.incremental_restore_seconds)}, "
        f"restore cpu {_ms(f.incremental_restore_cpu_seconds)}; "
        f"{f.incremental_chains_written} chains, {f.incremental_restore_bytes} B)"
    )


async def main(args: argparse.Namespace) -> None:
    netns = None
    if args.restore:
        netns = f"tkbench-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        for n in args.services:
            with StealShare() as steal:
                figures = await run_sync_benchmark(n, args.endpoints, netns, args.binary)
            print(f"{report(figures)}; {steal or 'steal -'} of the host's CPU time", flush=True)
    finally:
        if netns:
            subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--endpoints", type=int, default=2, help="endpoints per service")
    parser.add_argument("--restore", action="store_true", help="also run iptables-restore (root)")
    parser.add_argument("--binary", default="iptables",
                        help="iptables, iptables-legacy, or nft (the nftables mode)")
    asyncio.run(main(parser.parse_args()))
