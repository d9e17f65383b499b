"""How long the controllers take to create every pod of a large Deployment.

Starts an API server (SQLite store) and the controller manager, creates a Deployment of
N replicas and prints the time until N pods exist and until the ReplicaSet's status
reports them. With ``--process`` the controller manager runs as its own process
(``tinykube controller-manager``), as in a real cluster; otherwise it shares the API
server's event loop.

    python3 bench/controllers.py [--replicas 1000] [--process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time

from tinykube.apiserver.server import APIServer, APIServerConfig
from tinykube.client.rest import Client
from tinykube.controllers.testutil import RunningControllers, wait_for_list, wait_for_object


def deployment(replicas: int) -> dict:
    labels = {"app": "bench"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "pause"}]}}}}


@contextlib.asynccontextmanager
async def controller_manager_process(server: APIServer):
    """``tinykube controller-manager`` in its own process, stopped by PID."""
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = os.path.join(tmp, "kubeconfig")
        server.write_kubeconfig(kubeconfig, None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tinykube.cli.main", "controller-manager",
            "--kubeconfig", kubeconfig, "--controllers", "replicaset,deployment",
            "--leader-elect=true", "--secure-port", "0")
        try:
            # Time from when it leads (its controllers start right after), not from exec.
            client = Client(server.url, insecure=True)
            try:
                await wait_for_object(client.resource("leases", "coordination.k8s.io"),
                                      "kube-controller-manager", lambda o: o is not None,
                                      namespace="kube-system", timeout=60)
            finally:
                await client.close()
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()


async def run(replicas: int, store: str, process: bool) -> None:
    server = APIServer(APIServerConfig(store_url=store, bind_address="127.0.0.1",
                                       secure_port=0))
    await server.start()
    client = Client(server.url, insecure=True)
    try:
        controllers = (controller_manager_process(server) if process else
                       RunningControllers(client, ["replicaset", "deployment"]))
        async with controllers:
            start = time.perf_counter()
            await client.resource("deployments", "apps").create(deployment(replicas),
                                                                 namespace="default")
            await wait_for_list(client.resource("pods"), lambda items: len(items) >= replicas,
                                namespace="default", timeout=300)
            created = time.perf_counter() - start
            await wait_for_list(client.resource("replicasets", "apps"), lambda items: any(
                (rs.get("status") or {}).get("replicas") == replicas for rs in items),
                namespace="default", timeout=300)
            observed = time.perf_counter() - start
        print(f"{replicas} pods created in {created:.2f}s "
              f"({replicas / created:.0f} pods/s); ReplicaSet status caught up at "
              f"{observed:.2f}s")
    finally:
        await client.close()
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--process", action="store_true",
                        help="run the controller manager as a separate process")
    args = parser.parse_args()
    asyncio.run(run(args.replicas, args.store, args.process))


if __name__ == "__main__":
    main()
