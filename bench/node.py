"""Pod startup latency on one node: created -> Running as a watch sees it, p50/p99.

    python3 bench/node.py                      # 100 pods, process runtime (root: namespaces, cgroups)
    python3 bench/node.py --pods 200 --runtime fake
    python3 bench/node.py --qps 20             # create at a steady rate instead of one burst
    python3 bench/node.py --no-isolation       # process runtime without namespaces/cgroups

An in-process API server over a temporary SQLite store and one kubelet (its own bridge
and pod CIDR, removed at the end). Each pod runs ``sleep``; latency is measured from the
moment the create call returned to the first watch event showing phase Running. Goal:
p99 under 1 s for 100 pods with the process runtime. The kube-proxy part of the node
benchmark, when ``tinykube.proxy.benchmark.node_proxy_benchmark`` exists, runs after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time

from tinykube.apiserver.server import APIServer, APIServerConfig
from tinykube.client.rest import Client
from tinykube.kubelet import Kubelet, KubeletConfig
from tinykube.kubelet.runtime.process import can_isolate


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def pod(i: int, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bench-{i}"},
            "spec": {"nodeName": node, "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}


async def watch_running(client: Client, created: dict[str, float], running: dict[str, float],
                        total: int, ready: asyncio.Event, rv: str) -> None:
    async for kind, obj in client.resource("pods").watch(namespace="default", resource_version=rv):
        name = obj["metadata"]["name"]
        if kind in ("ADDED", "MODIFIED") and obj.get("status", {}).get("phase") == "Running" \
                and name not in running:
            running[name] = time.monotonic()
            if len(running) == total:
                ready.set()
                return


async def run(args: argparse.Namespace) -> dict[str, float]:
    tmp = tempfile.TemporaryDirectory(prefix="tinykube-bench-node-")
    server = APIServer(APIServerConfig(store_url=f"sqlite://{tmp.name}/store.db", bind_address="127.0.0.1",
                                       secure_port=0))
    await server.start()
    client = Client(server.url)
    kubelet = Kubelet(KubeletConfig(
        node_name="bench-node", runtime=args.runtime, client=Client(server.url), root_dir=f"{tmp.name}/kubelet",
        port=0, healthz_port=0, bridge="tkbbench", pod_cidr="10.250.250.0/24", service_cidr="10.251.250.0/28",
        remove_bridge_on_stop=True, max_pods=max(110, args.pods + 10), cluster_dns=["10.96.0.10"],
        isolate=False if args.no_isolation else None))
    await kubelet.start()
    await kubelet.registered.wait()
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    ready = asyncio.Event()
    try:
        rv = (await client.resource("pods").list(namespace="default"))["metadata"]["resourceVersion"]
        watcher = asyncio.create_task(watch_running(client, created, running, args.pods, ready, rv))
        pods = client.resource("pods")
        started = time.monotonic()

        async def create(i: int) -> None:
            await pods.create(pod(i, "bench-node"), namespace="default")
            created[f"bench-{i}"] = time.monotonic()

        if args.qps:
            for i in range(args.pods):
                await asyncio.sleep(max(0.0, started + i / args.qps - time.monotonic()))
                await create(i)
        else:
            await asyncio.gather(*(create(i) for i in range(args.pods)))
        await asyncio.wait_for(ready.wait(), args.timeout)
        await watcher
        total = time.monotonic() - started
        latencies = [running[name] - created[name] for name in created]
        return {"pods": args.pods, "p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99), "max": max(latencies), "mean": statistics.mean(latencies),
                "all_running_after": total}
    finally:
        await kubelet.stop()
        await kubelet.config.client.close()
        await client.close()
        await server.stop()
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--runtime", choices=["process", "fake"], default="process")
    parser.add_argument("--qps", type=float, default=0.0, help="creation rate (default: all at once)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--no-isolation", action="store_true",
                        help="process runtime without namespaces and cgroups (as without root)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load = os.getloadavg()[0]
    figures = asyncio.run(run(args))
    mode = "burst" if not args.qps else f"{args.qps:g} pods/s"
    isolated = args.runtime == "process" and can_isolate() and not args.no_isolation
    isolation = "namespaces+cgroups" if isolated else "no isolation"
    print(f"pod startup, {figures['pods']} pods, runtime {args.runtime} ({isolation}), {mode}: "
          f"p50 {figures['p50'] * 1000:.0f} ms, p90 {figures['p90'] * 1000:.0f} ms, "
          f"p99 {figures['p99'] * 1000:.0f} ms, max {figures['max'] * 1000:.0f} ms; "
          f"all Running after {figures['all_running_after']:.2f} s (load average {load:.2f} before the run)")
    try:
        from tinykube.proxy.benchmark import node_proxy_benchmark  # type: ignore[attr-defined]
    except ImportError:
        return
    print(node_proxy_benchmark())


if __name__ == "__main__":
    main()
