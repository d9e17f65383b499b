"""API server benchmark: creates, GETs, big LISTs and watch fan-out, per store backend.

The server runs as its own process (``tinykube apiserver``) so that the load generator
and the server each get a core. For every backend (SQLite, and a real etcd this script
starts on loopback) it prints:

- pod creates: latency p50/p99 at a steady 200 creates/s, and the closed-loop maximum rate
- single-object GET latency p50/p99
- LIST of 3,000 pods in one namespace, LIST of 30,000 pods across all namespaces
- watch fan-out: 1,000 watchers of one namespace, events delivered/s and delivery p99

Run: ``python bench/apiserver.py [--backends sqlite,etcd] [--pods 30000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import aiohttp
import orjson

from tinykube.api import meta
from tinykube.api.kinds import lookup
from tinykube.storage.store import open_store
from tinykube.testing.processes import stop_process

PODS = lookup("", "v1", "pods")
BIG_NAMESPACE = "bench-3k"
SPREAD_NAMESPACES = 27


def pod_object(namespace: str, name: str) -> dict:
    """A pod about the size of a real one after defaulting and admission."""
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "uid": meta.new_uid(),
                     "creationTimestamp": meta.now(), "labels": {"app": "bench",
                                                                  "pod-template-hash": "abc"}},
        "spec": {"containers": [{"name": "app", "image": "registry.local/app:1.0",
                                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                                 "terminationMessagePath": "/dev/termination-log",
                                 "terminationMessagePolicy": "File",
                                 "imagePullPolicy": "IfNotPresent"}],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                 "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                 "schedulerName": "default-scheduler", "nodeName": f"node-{hash(name) % 100}",
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "qosClass": "Burstable", "podIP": "10.244.1.2",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def namespace_object(name: str) -> dict:
    return {"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "uid": meta.new_uid(), "creationTimestamp": meta.now()},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


async def seed(store_url: str, total: int) -> None:
    """Write the pods straight into the store (what the LIST benchmarks read)."""
    store = open_store(store_url)
    ns_info = lookup("", "v1", "namespaces")
    namespaces = [BIG_NAMESPACE] + [f"bench-{i}" for i in range(SPREAD_NAMESPACES)]
    for ns in namespaces + ["fanout", "creates"]:
        await store.create(ns_info.storage_key(None, ns), orjson.dumps(namespace_object(ns)))
    work = [(BIG_NAMESPACE, f"pod-{i:05d}") for i in range(min(3000, total))]
    rest = total - len(work)
    work += [(namespaces[1 + i % SPREAD_NAMESPACES], f"pod-{i:05d}") for i in range(rest)]
    sem = asyncio.Semaphore(64)

    async def put(ns: str, name: str) -> None:
        async with sem:
            await store.create(PODS.storage_key(ns, name), orjson.dumps(pod_object(ns, name)))

    await asyncio.gather(*(put(ns, name) for ns, name in work))
    await store.close()


@dataclass
class Server:
    process: subprocess.Popen
    url: str

    def stop(self) -> None:
        stop_process(self.process)


def start_server(store_url: str, workdir: str) -> Server:
    kubeconfig = os.path.join(workdir, "kubeconfig")
    process = subprocess.Popen(
        [sys.executable, "-m", "tinykube.cli.main", "apiserver", "--store", store_url,
         "--secure-port", "0", "--write-kubeconfig", kubeconfig],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:
        if "serving on" in line:
            url = line.strip().rsplit(" ", 1)[-1]
            return Server(process, url)
    process.wait()
    raise RuntimeError(f"apiserver exited with {process.returncode}")


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (stable when the host is busy, unlike wall time)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def small_pod(name: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


async def bench_creates(session: aiohttp.ClientSession, url: str, rate: int,
                        seconds: float) -> dict:
    path = url + "/api/v1/namespaces/creates/pods"
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        started = time.perf_counter()
        async with session.post(path, data=small_pod(f"steady-{i}"), headers=headers) as resp:
            await resp.read()
            if resp.status != 201:
                failures += 1
        latencies.append(time.perf_counter() - started)

    for i in range(100):  # warm-up: lazy imports, schema loading, connection pool
        async with session.post(path, data=small_pod(f"warm-{i}"), headers=headers) as resp:
            await resp.read()
    tasks = []
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    steady = {"p50": pct(latencies, 50), "p99": pct(latencies, 99), "failures": failures,
              "achieved": count / (time.perf_counter() - start)}
    # closed loop: as fast as 32 clients can go
    done = 0
    start = time.perf_counter()

    async def worker(w: int) -> None:
        nonlocal done
        for j in range(60):
            async with session.post(path, data=small_pod(f"max-{w}-{j}"), headers=headers) \
                    as resp:
                await resp.read()
            done += 1

    await asyncio.gather(*(worker(w) for w in range(32)))
    steady["max_rate"] = done / (time.perf_counter() - start)
    return steady


async def bench_gets(session: aiohttp.ClientSession, url: str, count: int) -> dict:
    latencies = []
    for _ in range(count):
        name = f"pod-{random.randrange(3000):05d}"
        started = time.perf_counter()
        async with session.get(f"{url}/api/v1/namespaces/{BIG_NAMESPACE}/pods/{name}") as resp:
            await resp.read()
            assert resp.status == 200
        latencies.append(time.perf_counter() - started)
    return {"p50": pct(latencies, 50), "p99": pct(latencies, 99)}


async def timed_list(session: aiohttp.ClientSession, path: str, repeat: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with session.get(path) as resp:
            body = await resp.read()
        times.append(time.perf_counter() - started)
        count = len(orjson.loads(body)["items"])
    return statistics.median(times), count


async def bench_fanout(url: str, watchers: int, events: int, rate: int) -> dict:
    path = url + "/api/v1/namespaces/fanout/configmaps?watch=1&resourceVersion="
    sent: dict[bytes, float] = {}
    delays: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=None)) as session:
        ready = 0
        all_ready = asyncio.Event()

        async def watch() -> None:
            nonlocal ready
            async with session.get(path) as resp:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                received = 0
                while received < events:
                    line = await resp.content.readline()
                    if not line:
                        return
                    start = line.find(b'"name":"') + 8
                    name = line[start:line.find(b'"', start)]
                    delays.append(time.perf_counter() - sent.get(name, time.perf_counter()))
                    received += 1

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(0.5)  # let every watch register before the first event
        started = time.perf_counter()
        async with aiohttp.ClientSession() as writer:
            for i in range(events):
                name = f"fan-{i}".encode()
                sent[name] = time.perf_counter()
                async with writer.post(url + "/api/v1/namespaces/fanout/configmaps",
                                       json={"metadata": {"name": name.decode()}}) as resp:
                    await resp.read()
                await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
        await asyncio.wait_for(asyncio.gather(*tasks), 300)
        elapsed = time.perf_counter() - started
    return {"delivered": len(delays), "rate": len(delays) / elapsed, "p50": pct(delays, 50),
            "p99": pct(delays, 99)}


async def run_backend(name: str, store_url: str, workdir: str, total: int,
                      watchers: int) -> None:
    print(f"\n== {name} ({store_url}) ==", flush=True)
    started = time.perf_counter()
    await seed(store_url, total)
    print(f"seeded {total} pods in {time.perf_counter() - started:.1f} s", flush=True)
    server = start_server(store_url, workdir)
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            cpu_before = cpu_seconds(server.process.pid)
            lst3k, n3k = await timed_list(
                session, f"{server.url}/api/v1/namespaces/{BIG_NAMESPACE}/pods", 5)
            print(f"LIST {n3k} pods in one namespace: {ms(lst3k)} (median of 5)", flush=True)
            lst30k, n30k = await timed_list(session, f"{server.url}/api/v1/pods", 3)
            print(f"LIST {n30k} pods cluster-wide: {ms(lst30k)} (median of 3)", flush=True)
            print(f"server CPU for the 8 LISTs: {ms(cpu_seconds(server.process.pid) - cpu_before)}",
                  flush=True)
            gets = await bench_gets(session, server.url, 2000)
            print(f"GET single pod: p50 {ms(gets['p50'])}, p99 {ms(gets['p99'])}", flush=True)
            cpu_before = cpu_seconds(server.process.pid)
            creates = await bench_creates(session, server.url, 200, 10)
            created = 100 + 2000 + 32 * 60
            per_create = (cpu_seconds(server.process.pid) - cpu_before) / created
            print(f"server CPU per create: {ms(per_create)}", flush=True)
            print(f"pod creates at 200/s (achieved {creates['achieved']:.0f}/s): "
                  f"p50 {ms(creates['p50'])}, p99 {ms(creates['p99'])}, "
                  f"failures {creates['failures']}; closed-loop max "
                  f"{creates['max_rate']:.0f} creates/s", flush=True)
        fan = await bench_fanout(server.url, watchers, 100, 50)
        print(f"watch fan-out to {watchers} watchers: {fan['delivered']} events delivered, "
              f"{fan['rate']:.0f} events/s, delivery p50 {ms(fan['p50'])}, "
              f"p99 {ms(fan['p99'])}", flush=True)
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,etcd")
    parser.add_argument("--pods", type=int, default=30000)
    parser.add_argument("--watchers", type=int, default=1000)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="tinykube-bench-") as workdir:
            if backend == "sqlite":
                await run_backend("SQLite", f"sqlite://{workdir}/store.db", workdir,
                                  args.pods, args.watchers)
            elif backend == "etcd":
                from tinykube.testing.etcd import EtcdServer

                etcd = EtcdServer()
                etcd.start()
                try:
                    await run_backend("etcd 3.4", etcd.url, workdir, args.pods, args.watchers)
                finally:
                    etcd.cleanup()
            else:
                raise SystemExit(f"unknown backend {backend!r}")


if __name__ == "__main__":
    asyncio.run(main())
