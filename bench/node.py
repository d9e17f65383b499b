"""Pod startup latency on one node: created -> Running as a watch sees it, p50/p99.

    python3 bench/node.py                      # 100 pods, process runtime (root: namespaces, cgroups)
    python3 bench/node.py --pods 200 --runtime fake
    python3 bench/node.py --qps 20             # create at a steady rate instead of one burst
    python3 bench/node.py --no-isolation       # process runtime without namespaces/cgroups
    python3 bench/node.py --in-process         # API server and kubelet in the benchmark's process
    python3 bench/node.py --cpu                # and which processes used how much CPU meanwhile
    python3 bench/node.py --cpu --runs 3       # three runs 40 s apart (--gap), and their median p99

Layout, as in every real cluster: the API server runs in its own process (``tinykube
apiserver --store sqlite://<tmp>/store.db --secure-port 0 --write-kubeconfig ...``, a
temporary SQLite store) and so does the kubelet (this script again, with ``--kubelet``:
its own bridge ``tkbbench``, pod CIDR 10.252.0.0/24 and Service CIDR 10.253.0.0/28,
outside the 10.250/10.251 ranges the tests' private networks use; removed at the end).
The client creating the pods and the watcher timing them stay in the benchmark's own
process, so neither competes with the kubelet for its interpreter. ``--in-process`` runs
the API server and the kubelet in the benchmark's event loop instead. Each pod runs ``sleep``; latency is measured from the moment the
create call returned to the first watch event showing phase Running.
Goal: p99 under 1 s for 100 pods with the process runtime. The kube-proxy part of the node
benchmark, when ``tinykube.proxy.benchmark.node_proxy_benchmark`` exists, runs after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from cpustat import CpuByRole, StealShare

from tinykube.api.errors import ApiError
from tinykube.client.rest import Client
from tinykube.kubelet import Kubelet, KubeletConfig
from tinykube.kubelet.runtime.process import can_isolate
from tinykube.testing.processes import stop_process


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


class ApiServerProcess:
    """``tinykube apiserver`` in its own process, on a free loopback port."""

    def __init__(self, directory: str) -> None:
        self.kubeconfig = os.path.join(directory, "kubeconfig")
        self.log = open(os.path.join(directory, "apiserver.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tinykube", "apiserver", "--store", f"sqlite://{directory}/store.db",
             "--bind-address", "127.0.0.1", "--secure-port", "0", "--write-kubeconfig", self.kubeconfig],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"tinykube apiserver exited with {self.proc.returncode}; see {self.log.name}")
            if os.path.exists(self.kubeconfig):
                try:
                    async with self.client() as client:
                        if (await client.get_raw("/readyz")).strip() == b"ok":
                            return
                except (ConnectionError, OSError, ValueError, ApiError) as exc:
                    last_error = exc
            await asyncio.sleep(0.05)
        raise SystemExit(f"tinykube apiserver not ready after {timeout:.0f} s ({last_error}); see {self.log.name}")

    def client(self) -> Client:
        return Client.from_kubeconfig(self.kubeconfig)

    async def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class InProcessApiServer:
    """The API server in the benchmark's own event loop (``--in-process``)."""

    def __init__(self, directory: str) -> None:
        from tinykube.apiserver.server import APIServer, APIServerConfig

        self.server = APIServer(APIServerConfig(store_url=f"sqlite://{directory}/store.db",
                                                bind_address="127.0.0.1", secure_port=0))

    async def wait_ready(self) -> None:
        await self.server.start()

    def client(self) -> Client:
        return Client(self.server.url)

    async def stop(self) -> None:
        await self.server.stop()


NODE = "bench-node"


def kubelet_config(args: argparse.Namespace, root_dir: str, client: Client) -> KubeletConfig:
    return KubeletConfig(
        node_name=NODE, runtime=args.runtime, client=client, root_dir=root_dir, port=0, healthz_port=0,
        bridge="tkbbench", pod_cidr="10.252.0.0/24", service_cidr="10.253.0.0/28", remove_bridge_on_stop=True,
        max_pods=max(110, args.pods + 10), cluster_dns=["10.96.0.10"],
        isolate=False if args.no_isolation else None)


class InProcessKubelet:
    """The kubelet in the calling process's event loop (``--in-process``, and the
    ``--kubelet`` process itself)."""

    def __init__(self, args: argparse.Namespace, root_dir: str, client: Client) -> None:
        self.kubelet = Kubelet(kubelet_config(args, root_dir, client))

    async def wait_ready(self) -> None:
        await self.kubelet.start()
        gc.freeze()  # as `tinykube kubelet` does once started
        await self.kubelet.registered.wait()

    async def stop(self) -> None:
        await self.kubelet.stop()
        await self.kubelet.config.client.close()


async def serve_kubelet(args: argparse.Namespace) -> None:
    """``--kubelet``: run the benchmark's kubelet until SIGTERM; "ready" on stdout once the
    Node is registered."""
    kubelet = InProcessKubelet(args, args.root_dir, Client.from_kubeconfig(args.kubeconfig))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await kubelet.wait_ready()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await kubelet.stop()


class KubeletProcess:
    """The kubelet in its own process (this script with ``--kubelet``)."""

    def __init__(self, args: argparse.Namespace, directory: str, kubeconfig: str) -> None:
        self.log = open(os.path.join(directory, "kubelet.log"), "wb")
        command = [sys.executable, os.path.abspath(__file__), "--kubelet", "--kubeconfig", kubeconfig,
                   "--root-dir", os.path.join(directory, "kubelet"), "--runtime", args.runtime,
                   "--pods", str(args.pods)] + (["--no-isolation"] if args.no_isolation else [])
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        except asyncio.TimeoutError:
            line = b""
        if line.strip() != b"ready":
            raise SystemExit(f"the kubelet is not ready (exit code {self.proc.poll()}); see {self.log.name}")

    async def stop(self) -> None:
        # its pods stopped and its bridge removed before it exits
        await asyncio.to_thread(stop_process, self.proc, signal.SIGTERM, 60.0)
        self.log.close()


async def run(args: argparse.Namespace) -> dict[str, float]:
    tmp = tempfile.TemporaryDirectory(prefix="tinykube-bench-node-")
    server: ApiServerProcess | InProcessApiServer
    server = InProcessApiServer(tmp.name) if args.in_process else ApiServerProcess(tmp.name)
    kubelet: InProcessKubelet | KubeletProcess | None = None
    client = None
    try:
        await server.wait_ready()
        client = server.client()
        if isinstance(server, InProcessApiServer):
            kubelet = InProcessKubelet(args, f"{tmp.name}/kubelet", server.client())
        else:
            kubelet = KubeletProcess(args, tmp.name, server.kubeconfig)
        await kubelet.wait_ready()
        return await measure(args, client)
    finally:
        if kubelet is not None:
            await kubelet.stop()
        if client is not None:
            await client.close()
        await server.stop()
        tmp.cleanup()


def role(cmdline: str, parent: str) -> str | None:
    """Which part of the node a process is, for ``--cpu``."""
    if "--zygote" in cmdline:  # sandboxes and shims are forked by the fork server
        return "sandboxes and shims" if "--zygote" in parent else "fork server"
    if "--zygote" in parent:
        return "workloads"
    if "tinykube apiserver" in cmdline:
        return "API server"
    if "node.py" in cmdline:
        return "kubelet" if "--kubelet" in cmdline else "benchmark"
    return None


async def measure(args: argparse.Namespace, client: Client) -> dict[str, float]:
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    ready = asyncio.Event()
    rv = (await client.resource("pods").list(namespace="default"))["metadata"]["resourceVersion"]
    watcher = asyncio.create_task(watch_running(client, created, running, args.pods, ready, rv))
    pods = client.resource("pods")
    cpu = CpuByRole(role) if args.cpu else contextlib.nullcontext()

    async def create(i: int) -> None:
        await pods.create(pod(i, NODE), namespace="default")
        created[f"bench-{i}"] = time.monotonic()

    try:
        with cpu:
            started = time.monotonic()
            if args.qps:
                for i in range(args.pods):
                    await asyncio.sleep(max(0.0, started + i / args.qps - time.monotonic()))
                    await create(i)
            else:
                await asyncio.gather(*(create(i) for i in range(args.pods)))
            await asyncio.wait_for(ready.wait(), args.timeout)
            await watcher
            total = time.monotonic() - started
    finally:
        watcher.cancel()
    if isinstance(cpu, CpuByRole):
        print(f"{cpu} (in the {total:.2f} s until all were Running)")
    latencies = [running[name] - created[name] for name in created]
    return {"pods": args.pods, "p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
            "p99": percentile(latencies, 99), "max": max(latencies), "mean": statistics.mean(latencies),
            "all_running_after": total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--runtime", choices=["process", "fake"], default="process")
    parser.add_argument("--qps", type=float, default=0.0, help="creation rate (default: all at once)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--no-isolation", action="store_true",
                        help="process runtime without namespaces and cgroups (as without root)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the API server and the kubelet in the benchmark's process and event loop")
    parser.add_argument("--cpu", action="store_true",
                        help="print the CPU time each process of the node used until all pods were Running")
    parser.add_argument("--runs", type=int, default=1, help="runs, each on a fresh API server and kubelet")
    parser.add_argument("--gap", type=float, default=40.0, help="seconds between runs")
    parser.add_argument("--kubelet", action="store_true", help=argparse.SUPPRESS)  # the kubelet's process
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--root-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.kubelet:
        asyncio.run(serve_kubelet(args))
        return
    p99s = []
    for run_number in range(args.runs):
        if run_number:
            time.sleep(args.gap)  # so the file system's recently deleted inodes do not slow the next one
        p99s.append(run_once(args))
    if args.runs > 1:
        print(f"p99 over {args.runs} runs {args.gap:g} s apart: median {statistics.median(p99s) * 1000:.0f} ms, "
              f"{' / '.join(f'{p * 1000:.0f}' for p in p99s)} ms")
    try:
        from tinykube.proxy.benchmark import node_proxy_benchmark  # type: ignore[attr-defined]
    except ImportError:
        return
    print(node_proxy_benchmark())


def run_once(args: argparse.Namespace) -> float:
    """One run on a fresh API server and kubelet; prints its line and returns its p99."""
    load = os.getloadavg()[0]
    with StealShare() as steal:
        figures = asyncio.run(run(args))
    mode = "burst" if not args.qps else f"{args.qps:g} pods/s"
    isolated = args.runtime == "process" and can_isolate() and not args.no_isolation
    isolation = "namespaces+cgroups" if isolated else "no isolation"
    layout = "API server and kubelet in-process" if args.in_process else "API server and kubelet in their own processes"
    print(f"pod startup, {figures['pods']} pods, runtime {args.runtime} ({isolation}, {layout}), {mode}: "
          f"p50 {figures['p50'] * 1000:.0f} ms, p90 {figures['p90'] * 1000:.0f} ms, "
          f"p99 {figures['p99'] * 1000:.0f} ms, max {figures['max'] * 1000:.0f} ms; "
          f"all Running after {figures['all_running_after']:.2f} s (load average {load:.2f} before the run, "
          f"{steal or 'steal -'} of the host's CPU time during it)", flush=True)
    return figures["p99"]


if __name__ == "__main__":
    main()
