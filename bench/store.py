"""Store benchmark: the embedded SQLite store against real etcd, in one run.

    python3 bench/store.py [--quick] [--only sqlite|etcd]
    python3 bench/store.py --etcd-clients     (gRPC vs the JSON gateway, on one etcd)

etcd is started on loopback in a temporary directory and killed at the end. Printed per
backend: single-client put latency (p50/p99), puts/s with 100 concurrent writers, a
prefix list of 10,000 keys, watch commit-to-delivery latency with 1,000 watchers (p50/p99,
measured from the moment the write is issued, so it includes the commit), compaction of
100,000 old revisions with the longest write stall while it runs, and SQLite/etcd ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tinykube.storage.etcd import EtcdStore
from tinykube.storage.sqlite import SQLiteStore
from tinykube.storage.store import Store
from tinykube.testing.etcd import EtcdServer

VALUE = b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"bench"},' \
        b'"data":{"key":"' + b"v" * 300 + b'"}}'


@dataclass
class Sizes:
    latency_puts: int
    concurrent_puts: int
    writers: int = 100
    list_keys: int = 10_000
    watchers: int = 1_000
    watch_writes: int = 100
    compaction_revisions: int = 100_000


FULL = Sizes(latency_puts=3_000, concurrent_puts=30_000)
QUICK = Sizes(latency_puts=500, concurrent_puts=5_000, watch_writes=20,
              compaction_revisions=20_000)


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def put_latency(store: Store, n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        t = time.perf_counter()
        await store.create(f"/bench/latency/{i}", VALUE)
        samples.append(time.perf_counter() - t)
    return pct(samples, 0.5) * 1000, pct(samples, 0.99) * 1000


async def put_throughput(store: Store, total: int, writers: int) -> float:
    counter = iter(range(total))

    async def writer() -> None:
        for i in counter:
            await store.create(f"/bench/throughput/{i}", VALUE)

    t = time.perf_counter()
    await asyncio.gather(*[writer() for _ in range(writers)])
    return total / (time.perf_counter() - t)


async def fill(store: Store, prefix: str, n: int, writers: int = 100) -> None:
    counter = iter(range(n))

    async def writer() -> None:
        for i in counter:
            await store.create(f"{prefix}{i:06d}", VALUE)

    await asyncio.gather(*[writer() for _ in range(writers)])


async def list_time(store: Store, n: int) -> float:
    await fill(store, "/bench/list/", n)
    samples = []
    for _ in range(5):
        t = time.perf_counter()
        result = await store.list("/bench/list/")
        samples.append(time.perf_counter() - t)
        assert len(result.items) == n, len(result.items)
    return statistics.median(samples) * 1000


async def watch_latency(store: Store, watchers: int, writes: int) -> tuple[float, float]:
    issued: dict[str, float] = {}
    samples: list[float] = []
    start = await store.current_revision()
    streams = [store.watch("/bench/watch/", start) for _ in range(watchers)]
    remaining = [0]
    delivered = asyncio.Event()

    async def consume(watch: Any) -> None:
        async for batch in watch:
            now = time.perf_counter()
            for event in batch:
                samples.append(now - issued[event.kv.key])
                remaining[0] -= 1
            if remaining[0] <= 0:
                delivered.set()

    async def write_and_wait(key: str) -> None:
        remaining[0] = watchers
        delivered.clear()
        issued[key] = time.perf_counter()
        await store.create(key, VALUE)
        await asyncio.wait_for(delivered.wait(), 60)

    tasks = [asyncio.create_task(consume(w)) for w in streams]
    try:
        # A first event makes every watch live on the backend before anything is timed.
        await write_and_wait("/bench/watch/warmup")
        samples.clear()
        for i in range(writes):
            await write_and_wait(f"/bench/watch/{i}")
    finally:
        for w in streams:
            await w.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return pct(samples, 0.5) * 1000, pct(samples, 0.99) * 1000


async def compaction(store: Store, revisions: int) -> tuple[float, float, float]:
    """(compaction seconds, longest write stall during it ms, longest stall before it ms)."""
    keys = 1_000
    await fill(store, "/bench/compact/", keys)
    counter = iter(range(revisions))

    async def updater() -> None:
        for i in counter:
            await store.update(f"/bench/compact/{i % keys:06d}", VALUE, 0)

    await asyncio.gather(*[updater() for _ in range(100)])
    stop = asyncio.Event()
    stalls: list[float] = []

    async def probe() -> None:
        i = 0
        while not stop.is_set():
            t = time.perf_counter()
            await store.create(f"/bench/probe/{id(stalls)}-{i}", VALUE)
            stalls.append(time.perf_counter() - t)
            i += 1

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.5)
    baseline = max(stalls)
    stalls.clear()
    target = await store.current_revision()
    t = time.perf_counter()
    if isinstance(store, EtcdStore):
        await store.compact(target, physical=True)
    else:
        await store.compact(target)
    took = time.perf_counter() - t
    stop.set()
    await task
    return took, max(stalls) * 1000, baseline * 1000


async def run_backend(name: str, store: Store, sizes: Sizes) -> dict[str, float]:
    figures: dict[str, float] = {}
    print(f"[{name}] single-client put latency ...", file=sys.stderr)
    figures["put p50 ms"], figures["put p99 ms"] = await put_latency(store, sizes.latency_puts)
    print(f"[{name}] {sizes.writers} concurrent writers ...", file=sys.stderr)
    figures[f"puts/s ({sizes.writers} writers)"] = await put_throughput(
        store, sizes.concurrent_puts, sizes.writers)
    print(f"[{name}] list of {sizes.list_keys} keys ...", file=sys.stderr)
    figures[f"list {sizes.list_keys} keys ms"] = await list_time(store, sizes.list_keys)
    print(f"[{name}] watch delivery, {sizes.watchers} watchers ...", file=sys.stderr)
    p50, p99 = await watch_latency(store, sizes.watchers, sizes.watch_writes)
    figures[f"watch p50 ms ({sizes.watchers} watchers)"] = p50
    figures[f"watch p99 ms ({sizes.watchers} watchers)"] = p99
    print(f"[{name}] compaction of {sizes.compaction_revisions} revisions ...", file=sys.stderr)
    took, stall, baseline = await compaction(store, sizes.compaction_revisions)
    figures[f"compact {sizes.compaction_revisions} revs s"] = took
    figures["longest write during compaction ms"] = stall
    figures["longest write without compaction ms"] = baseline
    if isinstance(store, SQLiteStore):
        figures["longest compaction window (lock held) ms"] = (
            store.stats.longest_compaction_window * 1000)
    return figures


def report(results: dict[str, dict[str, float]]) -> str:
    names = list(results)
    rows = list(dict.fromkeys(r for figures in results.values() for r in figures))
    header = "| figure | " + " | ".join(names) + (" | SQLite/etcd |" if len(names) == 2 else " |")
    lines = [header, "|" + "---|" * (len(names) + 1 + (len(names) == 2))]
    for row in rows:
        cells = [_cell(results[n].get(row)) for n in names]
        line = f"| {row} | " + " | ".join(cells)
        if len(names) == 2:
            a, b = results[names[0]].get(row), results[names[1]].get(row)
            line += f" | {a / b:.2f}x" if a is not None and b else " | -"
        lines.append(line + " |")
    return "\n".join(lines)


async def compare_etcd_clients(server: EtcdServer, n: int = 2000) -> str:
    """gRPC (what EtcdStore uses) against etcd's JSON gateway, on the same etcd."""
    import base64

    import aiohttp
    import orjson
    from aetcd import rpc

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    async def grpc_client() -> dict[str, float]:
        channel = rpc.insecure_channel(server.endpoint)
        kv = rpc.KVStub(channel)
        lat = []
        for i in range(n):
            key = f"/cmp/grpc/{i}".encode()
            t = time.perf_counter()
            await kv.Txn(rpc.TxnRequest(
                compare=[rpc.Compare(key=key, target=rpc.Compare.CREATE,
                                     result=rpc.Compare.EQUAL, create_revision=0)],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=VALUE))]),
                timeout=5)
            lat.append(time.perf_counter() - t)

        async def writer(j: int) -> None:
            for i in range(n // 100):
                await kv.Put(rpc.PutRequest(key=f"/cmp/grpcc/{j}/{i}".encode(), value=VALUE),
                             timeout=5)

        t = time.perf_counter()
        await asyncio.gather(*[writer(j) for j in range(100)])
        rate = n / (time.perf_counter() - t)
        t = time.perf_counter()
        await kv.Range(rpc.RangeRequest(key=b"/cmp/grpc/", range_end=b"/cmp/grpc0"), timeout=10)
        listed = time.perf_counter() - t
        await channel.close()
        return {"txn put p50 ms": pct(lat, .5) * 1000, "txn put p99 ms": pct(lat, .99) * 1000,
                "puts/s (100 writers)": rate, f"range {n} keys ms": listed * 1000}

    async def gateway_client() -> dict[str, float]:
        async with aiohttp.ClientSession() as session:
            async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
                async with session.post(server.client_url + path, data=orjson.dumps(body)) as r:
                    return orjson.loads(await r.read())

            lat = []
            for i in range(n):
                key = b64(f"/cmp/gw/{i}".encode())
                t = time.perf_counter()
                await post("/v3/kv/txn", {
                    "compare": [{"key": key, "target": "CREATE", "result": "EQUAL",
                                 "create_revision": "0"}],
                    "success": [{"request_put": {"key": key, "value": b64(VALUE)}}]})
                lat.append(time.perf_counter() - t)

            async def writer(j: int) -> None:
                for i in range(n // 100):
                    await post("/v3/kv/put", {"key": b64(f"/cmp/gwc/{j}/{i}".encode()),
                                              "value": b64(VALUE)})

            t = time.perf_counter()
            await asyncio.gather(*[writer(j) for j in range(100)])
            rate = n / (time.perf_counter() - t)
            t = time.perf_counter()
            got = await post("/v3/kv/range", {"key": b64(b"/cmp/gw/"), "range_end": b64(b"/cmp/gw0")})
            values = [base64.b64decode(item["value"]) for item in got.get("kvs", [])]
            listed = time.perf_counter() - t
            assert len(values) == n
        return {"txn put p50 ms": pct(lat, .5) * 1000, "txn put p99 ms": pct(lat, .99) * 1000,
                "puts/s (100 writers)": rate, f"range {n} keys ms": listed * 1000}

    return report({"gRPC": await grpc_client(), "JSON gateway": await gateway_client()}).replace(
        "SQLite/etcd", "gRPC/gateway")


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about a minute")
    parser.add_argument("--only", choices=["sqlite", "etcd"])
    parser.add_argument("--etcd-clients", action="store_true",
                        help="only compare etcd's gRPC API with its JSON gateway")
    args = parser.parse_args()
    if args.etcd_clients:
        server = EtcdServer()
        try:
            server.start()
            print(await compare_etcd_clients(server))
        finally:
            server.cleanup()
        return
    sizes = QUICK if args.quick else FULL
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-") as tmp:
        if args.only in (None, "sqlite"):
            store = SQLiteStore(os.path.join(tmp, "bench.db"))
            try:
                results["SQLite"] = await run_backend("sqlite", store, sizes)
            finally:
                await store.close()
        if args.only in (None, "etcd"):
            server = EtcdServer()
            try:
                server.start()
                store = EtcdStore.from_url(server.url)
                try:
                    results["etcd"] = await run_backend("etcd", store, sizes)
                finally:
                    await store.close()
            finally:
                server.cleanup()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"store benchmark ({'--quick' if args.quick else 'full'}), {os.cpu_count()} cores,"
          f" load average at the end {load}")
    print(report(results))


if __name__ == "__main__":
    asyncio.run(main())
