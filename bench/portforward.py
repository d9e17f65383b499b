"""Port-forward throughput: a download through ``kubectl port-forward`` (kubectl -> API
server -> kubelet -> the pod's loopback, SPDY all the way) against the same download
straight from the pod's IP.

    python3 bench/portforward.py                          # 100 MiB x 3 rounds, /usr/bin/kubectl
    python3 bench/portforward.py --mib 200 --kubectl /usr/lib/google-cloud-sdk/bin/kubectl.1.27

The API server and the kubelet run in their own processes as in bench/node.py (its bridge
``tkbbench``, pods in 10.252.0.0/24); the pod serves ``--mib`` MiB per GET with Python's
http.server. Each round prints wall time, MiB/s and the whole machine's CPU time for both
paths, and the ratio. kubectl 1.31 and later tunnel the session through a WebSocket; older
ones upgrade to SPDY at the API server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import tempfile
import time

import node
from cpustat import StealShare, busy_seconds

from tinykube.api import pods as podutil
from tinykube.testing.kubelet import wait_for_pod
from tinykube.testing.processes import stop_process

SERVER = """
import http.server, sys
block, count = b"x" * (1 << 20), int(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(count * len(block)))
        self.end_headers()
        for _ in range(count):
            self.wfile.write(block)
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def pod(mib: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pf"},
            "spec": {"nodeName": node.NODE, "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "web", "image": "python", "command": ["python3", "-c", SERVER, str(mib)],
                                     "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}


def download(host: str, port: int) -> tuple[int, float, float]:
    """(body bytes, wall seconds, machine CPU seconds) for one GET read to the end."""
    cpu, started, received, head = busy_seconds(), time.monotonic(), 0, b""
    with socket.create_connection((host, port), timeout=60) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while chunk := sock.recv(1 << 20):
            if b"\r\n\r\n" not in head:  # still in the status line and headers
                head += chunk
                chunk = head.partition(b"\r\n\r\n")[2]
            received += len(chunk)
    return received, time.monotonic() - started, busy_seconds() - cpu


def forward(kubectl: str, kubeconfig: str) -> tuple[subprocess.Popen, int]:
    """``kubectl port-forward pod/pf :8080`` and the local port it chose."""
    proc = subprocess.Popen([kubectl, "--kubeconfig", kubeconfig, "port-forward", "pod/pf", ":8080"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:<port> -> 8080"
    if not line.startswith("Forwarding from 127.0.0.1:"):
        stop_process(proc)
        raise SystemExit(f"kubectl port-forward did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
    return proc, int(line.split()[2].rsplit(":", 1)[1])


def report(name: str, mib: int, received: int, wall: float, cpu: float) -> str:
    if received != mib << 20:
        raise SystemExit(f"{name}: got {received} bytes, not {mib << 20}")
    return f"{name} {wall:.3f} s ({mib / wall:.0f} MiB/s, {cpu:.2f} core-s)"


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tinykube-bench-pf-") as tmp:
        server = node.ApiServerProcess(tmp)
        kubelet = None
        try:
            await server.wait_ready()
            kubelet = node.KubeletProcess(argparse.Namespace(runtime="process", pods=1, no_isolation=False),
                                          tmp, server.kubeconfig)
            await kubelet.wait_ready()
            async with server.client() as client:
                await client.resource("pods").create(pod(args.mib), namespace="default")
                ready = await wait_for_pod(client, "default", "pf", podutil.is_ready, timeout=60)
            ip = ready["status"]["podIP"]
            proc, local = await asyncio.to_thread(forward, args.kubectl, server.kubeconfig)
            try:
                await asyncio.to_thread(download, "127.0.0.1", local)  # warm both paths
                for _ in range(args.rounds):
                    with StealShare() as steal:
                        through = await asyncio.to_thread(download, "127.0.0.1", local)
                        direct = await asyncio.to_thread(download, ip, 8080)
                    print(f"{args.mib} MiB: {report('port-forward', args.mib, *through)}; "
                          f"{report('pod IP', args.mib, *direct)}; port-forward takes "
                          f"{through[1] / direct[1]:.1f}x the time, {through[2] / max(direct[2], 1e-3):.1f}x the CPU "
                          f"({steal or 'steal -'} of the host's CPU time)", flush=True)
            finally:
                stop_process(proc)
        finally:
            if kubelet is not None:
                await kubelet.stop()
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=100, help="MiB per download")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kubectl", default="/usr/bin/kubectl")
    args = parser.parse_args()
    if not os.path.exists(args.kubectl):
        raise SystemExit(f"no kubectl at {args.kubectl}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
