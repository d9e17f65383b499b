"""What an exec costs (an exec probe, ``kubectl exec``): the process runtime's ExecSync of
``true`` in a running pod, against starting ``true`` on the host as a plain subprocess.

    python3 bench/exec.py                 # 3 rounds of 50 execs (root: a pod with namespaces and cgroups)
    python3 bench/exec.py --execs 200 --rounds 5

The pod runs ``sleep`` on its own bridge ``tkbbench`` (pod CIDR 10.252.0.0/24, as
bench/node.py), removed at the end. Each round prints the wall time and the whole machine's
CPU time per exec (user + system from /proc/stat, so the shim, the command and the kernel's
share are all in it), then the same for the host subprocess, and the ratio of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from typing import Awaitable, Callable

from cpustat import StealShare, busy_seconds

from tinykube.kubelet.runtime.interface import ContainerConfig, PodSandboxConfig
from tinykube.kubelet.runtime.network import remove_bridge
from tinykube.kubelet.runtime.process import ProcessRuntime, can_isolate


async def per_call(n: int, call: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(wall seconds, machine CPU seconds) per call, over ``n`` calls one after another."""
    cpu, started = busy_seconds(), time.monotonic()
    for _ in range(n):
        await call()
    return (time.monotonic() - started) / n, (busy_seconds() - cpu) / n


async def host_true() -> None:
    proc = await asyncio.create_subprocess_exec("true", stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    await proc.communicate()


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-exec-") as tmp:
        rt = ProcessRuntime(f"{tmp}/runtime", pod_cidr="10.252.0.0/24", bridge="tkbbench",
                            cgroup_parent="tinykube/bench-exec", service_cidr="10.253.0.0/28")
        try:
            cfg = PodSandboxConfig(name="exec", namespace="default", uid="uid-bench-exec",
                                   log_directory=f"{tmp}/logs", dns_servers=["10.96.0.10"])
            sid = await rt.run_pod_sandbox(cfg)
            cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox", command=["sleep", "3600"],
                                                                 log_path="c/0.log"), cfg)
            await rt.start_container(cid)

            async def in_pod() -> None:
                result = await rt.exec_sync(cid, ["true"], 10)
                if result.exit_code != 0:
                    raise SystemExit(f"exec failed ({result.exit_code}): {result.stderr.decode()}")

            await in_pod()  # the fork server is warm from the sandbox already; this warms the rest
            isolation = "namespaces+cgroups" if rt.isolate else "no isolation"
            for _ in range(args.rounds):
                with StealShare() as steal:
                    wall, cpu = await per_call(args.execs, in_pod)
                    host_wall, host_cpu = await per_call(args.execs, host_true)
                print(f"exec of `true` in a pod ({isolation}), {args.execs} in a row: {wall * 1000:.1f} ms wall, "
                      f"{cpu * 1000:.1f} ms CPU each; host subprocess: {host_wall * 1000:.1f} ms wall, "
                      f"{host_cpu * 1000:.1f} ms CPU each; ratio {cpu / host_cpu:.1f}x CPU "
                      f"({steal or 'steal -'} of the host's CPU time)", flush=True)
        finally:
            await rt.close()
            if rt.isolate:
                await remove_bridge("tkbbench")
                rt.cgroups.remove("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execs", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not can_isolate():
        print("(not root: the pod shares the host's namespaces)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
