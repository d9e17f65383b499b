"""Scheduler throughput: pods bound per second, like upstream's scheduler_perf.

The API server runs in a child process (over a ``memory://`` store) so it has its own
core; this process registers hollow nodes (no heartbeats, so only scheduling load is
measured), creates the pending pods, then starts the scheduler and times from its first
binding to its last. Scenarios: ``basic`` (cpu/memory requests), ``node-affinity``
(required zone affinity + a preferred term), ``anti-affinity`` (required pod
anti-affinity on ``kubernetes.io/hostname`` within groups of pods).

    python bench/scheduler.py              # 10,000 pods: basic on 1,000 and 5,000 nodes,
                                           # node affinity and anti-affinity on 1,000 nodes
    python bench/scheduler.py --quick      # 500 pods on 100 nodes per scenario
    python bench/scheduler.py --scenario basic --nodes 5000 --pods 10000
    python bench/scheduler.py --algorithm-only   # the scheduling cycle alone, no HTTP

"sched cpu" and "apisrv cpu" are the CPU time per bound pod of this process (scheduler,
its informers and event writes) and of the API server process while scheduling: on a busy
2-core machine they show which side limits the end-to-end rate.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass

import click

from tinykube.client.rest import Client
from tinykube.kubelet.hollow import HollowNodes, NodeTemplate
from tinykube.scheduler import Scheduler, SchedulerConfig

ZONES = ("z1", "z2", "z3", "z4")
ZONE_KEY = "topology.kubernetes.io/zone"
CREATE_CONCURRENCY = 64


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc), to tell who is the bottleneck."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_apiserver(port: int, ready: multiprocessing.synchronize.Event) -> None:
    """Child process: an API server on 127.0.0.1:port until SIGTERM."""
    from tinykube.apiserver.server import APIServer, APIServerConfig

    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        server = APIServer(APIServerConfig(store_url="memory://", bind_address="127.0.0.1",
                                           secure_port=port, event_ttl_seconds=3600))
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        ready.set()
        await stop.wait()
        await server.stop()

    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())


@dataclass
class Scenario:
    name: str
    nodes: int
    pods: int

    def pod(self, i: int) -> dict:
        spec: dict = {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9",
                                      "resources": {"requests": {"cpu": "100m",
                                                                 "memory": "100Mi"}}}]}
        labels = {"bench": self.name}
        if self.name == "node-affinity":
            spec["affinity"] = {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": ZONE_KEY, "operator": "In",
                                           "values": ["z1", "z2"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "preference": {"matchExpressions": [
                        {"key": ZONE_KEY, "operator": "In", "values": ["z1"]}]}}]}}
        elif self.name == "anti-affinity":
            group = f"g{i % max(1, self.pods * 2 // self.nodes)}"
            labels["group"] = group
            spec["affinity"] = {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"group": group}},
                     "topologyKey": "kubernetes.io/hostname"}]}}
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"{self.name}-{i}", "namespace": "default",
                             "labels": labels},
                "spec": spec}


async def _create_pods(client: Client, scenario: Scenario) -> None:
    pods = client.resource("pods")
    sem = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def one(i: int) -> None:
        async with sem:
            await pods.create(scenario.pod(i), namespace="default")

    await asyncio.gather(*(one(i) for i in range(scenario.pods)))


async def _register_nodes(client: Client, scenario: Scenario) -> list[HollowNodes]:
    groups = []
    per_zone = scenario.nodes // len(ZONES)
    for z, zone in enumerate(ZONES):
        count = per_zone if z < len(ZONES) - 1 else scenario.nodes - per_zone * z
        group = HollowNodes(client, count=count, name_prefix="bench-node-",
                            first_index=z * per_zone, lease_interval=0, manage_pods=False,
                            capacity=NodeTemplate(cpu="32", memory="256Gi", pods=110),
                            labels={ZONE_KEY: zone})
        await group.start()
        groups.append(group)
    return groups


async def run_scenario(url: str, scenario: Scenario,
                       server_pid: int | None = None) -> dict[str, float]:
    async with Client(url, user_agent="bench") as client:
        t0 = time.perf_counter()
        groups = await _register_nodes(client, scenario)
        t1 = time.perf_counter()
        await _create_pods(client, scenario)
        t2 = time.perf_counter()
        sched = Scheduler(SchedulerConfig(client=client, leader_elect=False, secure_port=-1))
        await sched.start()
        done = asyncio.Event()
        first: list[float] = []
        original = sched.recorder.event

        def counting_event(obj, type, reason, message):  # noqa: A002
            if reason == "Scheduled":
                if not first:
                    first.append(time.perf_counter())
                if sched.scheduled >= scenario.pods:
                    done.set()
            original(obj, type, reason, message)

        sched.recorder.event = counting_event  # type: ignore[method-assign]
        start = time.perf_counter()
        cpu0 = time.process_time()
        server_cpu0 = _cpu_seconds(server_pid) if server_pid else 0.0
        try:
            await asyncio.wait_for(done.wait(), timeout=max(120, scenario.pods / 10))
        finally:
            end = time.perf_counter()
            cpu = time.process_time() - cpu0
            server_cpu = (_cpu_seconds(server_pid) - server_cpu0) if server_pid else 0.0
            scheduled = sched.scheduled
            await sched.stop()
            for group in groups:
                await group.stop()
        return {"nodes_s": t1 - t0, "create_s": t2 - t1, "sync_s": start - t2,
                "sched_cpu_ms": 1000 * cpu / max(scheduled, 1),
                "server_cpu_ms": 1000 * server_cpu / max(scheduled, 1),
                "schedule_s": end - (first[0] if first else start), "scheduled": scheduled,
                "pods_per_s": scheduled / max(end - (first[0] if first else start), 1e-9)}


def _run_isolated(scenario: Scenario) -> dict[str, float]:
    """One scenario against a fresh API server process (killed by PID afterwards)."""
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    ready = ctx.Event()
    proc = ctx.Process(target=_serve_apiserver, args=(port, ready), daemon=True)
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("API server did not start")
        return asyncio.run(run_scenario(f"http://127.0.0.1:{port}", scenario, proc.pid))
    finally:
        if proc.pid is not None and proc.is_alive():
            os.kill(proc.pid, signal.SIGTERM)
        proc.join(20)
        if proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()


def run_algorithm_only(scenario: Scenario) -> dict[str, float]:
    """The scheduling cycle alone (PreFilter .. Score, assume) over an in-memory cache:
    the scheduler's own capacity, without HTTP, binding or events."""
    from tinykube.kubelet.hollow import node_object
    from tinykube.scheduler.framework import CycleState
    from tinykube.scheduler.nodeinfo import PodInfo
    from tinykube.scheduler.testutil import Harness

    per_zone = scenario.nodes // len(ZONES)
    template = NodeTemplate(cpu="32", memory="256Gi", pods=110)
    nodes = []
    for i in range(scenario.nodes):
        template.labels = {ZONE_KEY: ZONES[min(i // max(per_zone, 1), len(ZONES) - 1)]}
        nodes.append(node_object(f"bench-node-{i}", i, template))
    harness = Harness(nodes)
    fwk, cache = harness.framework, harness.cache
    infos = [PodInfo(scenario.pod(i)) for i in range(scenario.pods)]
    start = time.perf_counter()
    cpu0 = time.process_time()
    next_start = bound = 0
    for info in infos:
        result, next_start = fwk.find_nodes(CycleState(), info, next_start)
        if result.node is not None:
            cache.assume_pod(info.on_node(result.node), result.node)
            bound += 1
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    return {"nodes_s": 0.0, "create_s": 0.0, "sync_s": 0.0, "schedule_s": elapsed,
            "sched_cpu_ms": 1000 * cpu / max(bound, 1), "server_cpu_ms": 0.0,
            "scheduled": bound, "pods_per_s": bound / elapsed}


DEFAULT_RUNS = [("basic", 1000, 10000), ("basic", 5000, 10000),
                ("node-affinity", 1000, 10000), ("anti-affinity", 1000, 10000)]
QUICK_RUNS = [("basic", 100, 500), ("node-affinity", 100, 500), ("anti-affinity", 100, 500)]


@click.command()
@click.option("--quick", is_flag=True, help="Small runs (100 nodes, 500 pods).")
@click.option("--scenario", type=click.Choice(["basic", "node-affinity", "anti-affinity"]))
@click.option("--nodes", type=int, default=1000, show_default=True)
@click.option("--pods", type=int, default=10000, show_default=True)
@click.option("--algorithm-only", is_flag=True,
              help="Time the scheduling cycle alone (no API server, no binding).")
def main(quick: bool, scenario: str | None, nodes: int, pods: int,
         algorithm_only: bool) -> None:
    logging.basicConfig(level=logging.WARNING)
    # On SIGTERM, exit through the finally blocks that stop the API server process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = [(scenario, nodes, pods)] if scenario else (QUICK_RUNS if quick else DEFAULT_RUNS)
    print(f"{'scenario':<15}{'nodes':>7}{'pods':>7}{'bound':>7}{'seconds':>9}"
          f"{'pods/s':>9}{'sched cpu':>11}{'apisrv cpu':>12}   (setup: nodes s, pods s, sync s)")
    for name, n, p in runs:
        run = run_algorithm_only if algorithm_only else _run_isolated
        r = run(Scenario(name, n, p))
        print(f"{name:<15}{n:>7}{p:>7}{int(r['scheduled']):>7}{r['schedule_s']:>9.2f}"
              f"{r['pods_per_s']:>9.1f}{r['sched_cpu_ms']:>8.2f} ms{r['server_cpu_ms']:>9.2f} ms"
              f"   ({r['nodes_s']:.1f}, {r['create_s']:.1f}, {r['sync_s']:.1f})", flush=True)


if __name__ == "__main__":
    main()
