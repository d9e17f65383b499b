"""API server CPU per request kind, for the requests a pod start costs (what bench/node.py
is bound by): a pod create, one pods/status merge PATCH as the kubelet sends it, three
Event POSTs, with one pod watcher open (the fan-out is part of each write's cost).

    python3 bench/apiserver_requests.py                   # 100 pods x 5 rounds, CPU per kind
    python3 bench/apiserver_requests.py --profile 25      # plus the top 25 functions per kind
    python3 bench/apiserver_requests.py --patch-type strategic

The server runs in this process (asyncio, a temporary SQLite store, as bench/node.py starts
it); the load comes from a child process, so this process's CPU time (time.process_time)
is the server's. Phases run one after the other (all creates, then all status PATCHes, then
all Events), each bracketed by a handshake over the child's stdin/stdout, and the figure is
the server CPU of a phase divided by its number of requests: the minimum and median over the
rounds (each round a fresh namespace) are printed, as they stay stable on a busy host.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import pstats
import statistics
import subprocess
import sys
import tempfile
import time

KINDS = ("create", "status", "event")


# --- the load (child process) ---------------------------------------------------------

def pod_body(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"bench-{i}", "labels": {"app": "bench"}},
            "spec": {"nodeName": "bench-node", "automountServiceAccountToken": False,
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}


def status_body(pod: dict, i: int) -> dict:
    """What the kubelet's push_status sends once the pod runs (tinykube/kubelet/kubelet.py)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": stamp}
                  for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                            "PodScheduled")]
    ip = f"10.250.{i // 250}.{i % 250 + 2}"
    status = {"phase": "Running", "conditions": conditions, "hostIP": "10.0.0.5",
              "hostIPs": [{"ip": "10.0.0.5"}], "podIP": ip, "podIPs": [{"ip": ip}], "startTime": stamp,
              "qosClass": "BestEffort",
              "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "docker.io/library/busybox@sha256:ab",
                                     "ready": True, "restartCount": 0, "started": True,
                                     "state": {"running": {"startedAt": stamp}}, "lastState": {},
                                     "containerID": f"process://{pod['metadata']['uid'][:12]}"}]}
    return {"status": {**{k: None for k in ("reason", "message", "podIP", "podIPs", "initContainerStatuses")},
                       **status}, "metadata": {"uid": pod["metadata"]["uid"]}}


def event_body(pod: dict, reason: str, message: str) -> dict:
    """As tinykube.client.events.build_event writes them."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    md = pod["metadata"]
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{md['name']}.{time.time_ns():x}", "namespace": md["namespace"]},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "name": md["name"], "uid": md["uid"],
                               "namespace": md["namespace"], "resourceVersion": md["resourceVersion"]},
            "reason": reason, "message": message, "source": {"component": "kubelet", "host": "bench-node"},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1, "type": "Normal",
            "eventTime": None, "reportingComponent": "kubelet", "reportingInstance": "bench-node"}


async def client_main(url: str, pods: int, rounds: int, concurrency: int, patch_type: str) -> None:
    import aiohttp
    import orjson

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def phase(name: str) -> None:
        print(name, flush=True)
        assert (await reader.readline()).strip() == b"go"

    content = {"merge": "application/merge-patch+json",
               "strategic": "application/strategic-merge-patch+json"}[patch_type]
    async with aiohttp.ClientSession(json_serialize=lambda o: orjson.dumps(o).decode()) as session:
        sem = asyncio.Semaphore(concurrency)

        async def call(method: str, path: str, body: dict, ctype: str = "application/json") -> dict:
            async with sem:
                async with session.request(method, url + path, data=orjson.dumps(body),
                                           headers={"Content-Type": ctype}) as resp:
                    data = await resp.read()
                    if resp.status >= 300:
                        raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
                    return orjson.loads(data)

        for r in range(rounds):
            ns = f"bench-{r}"
            await call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": ns}})
            base = f"/api/v1/namespaces/{ns}"
            watch = await session.get(url + base + "/pods", params={"watch": "1"})
            seen = 0

            async def drain() -> None:
                nonlocal seen
                async for _ in watch.content:
                    seen += 1

            drainer = asyncio.create_task(drain())
            await asyncio.sleep(0.2)
            await phase("create")
            created = await asyncio.gather(*(call("POST", base + "/pods", pod_body(i)) for i in range(pods)))
            await phase("status")
            await asyncio.gather(*(call("PATCH", f"{base}/pods/{p['metadata']['name']}/status",
                                        status_body(p, i), content) for i, p in enumerate(created)))
            await phase("event")
            await asyncio.gather(*(call("POST", base + "/events", event_body(p, reason, msg))
                                   for p in created for reason, msg in
                                   (("Pulled", 'Container image "busybox" already present on machine'),
                                    ("Created", "Created container c"), ("Started", "Started container c"))))
            await phase("end")
            while seen < 2 * pods:
                await asyncio.sleep(0.01)
            drainer.cancel()
            watch.close()
    print("done", flush=True)


# --- the server (this process) --------------------------------------------------------

async def server_main(args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, cProfile.Profile]]:
    from tinykube.apiserver.server import APIServer, APIServerConfig

    tmp = tempfile.TemporaryDirectory(prefix="tinykube-bench-requests-")
    server = APIServer(APIServerConfig(store_url=f"sqlite://{tmp.name}/store.db", bind_address="127.0.0.1",
                                       secure_port=0))
    await server.start()
    per_request: dict[str, list[float]] = {k: [] for k in KINDS}
    counts = {"create": args.pods, "status": args.pods, "event": 3 * args.pods}
    profiles = {k: cProfile.Profile(time.process_time) for k in KINDS}  # CPU, not wall time
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", server.url, "--pods", str(args.pods), "--rounds", str(args.rounds),
        "--concurrency", str(args.concurrency), "--patch-type", args.patch_type,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        current: str | None = None
        began = 0.0
        while True:
            line = (await child.stdout.readline()).decode().strip()
            if current is not None:
                spent = time.process_time() - began
                if args.profile:
                    profiles[current].disable()
                per_request[current].append(spent / counts[current])
                current = None
            if line in ("done", ""):
                break
            if line in KINDS:
                current = line
                if args.profile:
                    profiles[current].enable()
                began = time.process_time()
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        if await child.wait() != 0:
            raise SystemExit("the load process failed")
    finally:
        await server.stop()
        tmp.cleanup()
    return per_request, profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--patch-type", choices=["merge", "strategic"], default="merge")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the server and print the top N functions per kind (by tottime)")
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--dump", metavar="PREFIX", help="with --profile: write PREFIX<kind>.prof files")
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(client_main(args.client, args.pods, args.rounds, args.concurrency, args.patch_type))
        return
    logging.basicConfig(level=logging.WARNING)
    per_request, profiles = asyncio.run(server_main(args))
    if args.profile:
        for kind in KINDS:
            if args.dump:
                profiles[kind].dump_stats(f"{args.dump}{kind}.prof")
            out = io.StringIO()
            pstats.Stats(profiles[kind], stream=out).sort_stats(args.sort).print_stats(args.profile)
            print(f"===== {kind} =====")
            print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    note = " (under cProfile)" if args.profile else ""
    print(f"server CPU per request, {args.pods} pods x {args.rounds} rounds, {args.patch_type} status patch, "
          f"one pod watcher{note}:")
    for kind in KINDS:
        values = per_request[kind]
        print(f"  {kind:7s} min {min(values) * 1000:6.3f} ms   median {statistics.median(values) * 1000:6.3f} ms")
    per_pod = sum(statistics.median(per_request[k]) * (3 if k == "event" else 1) for k in KINDS)
    print(f"  per pod (create + status + 3 events): {per_pod * 1000:.2f} ms")
    if args.profile:
        # A load-independent figure: Python function calls the server made per request.
        requests = {"create": args.pods, "status": args.pods, "event": 3 * args.pods}
        calls = {k: pstats.Stats(profiles[k]).total_calls / (requests[k] * args.rounds) for k in KINDS}
        print("  Python function calls per request: " + ", ".join(f"{k} {calls[k]:.0f}" for k in KINDS))


if __name__ == "__main__":
    main()
