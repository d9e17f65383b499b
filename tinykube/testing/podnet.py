"""A throw-away pod network for kube-proxy tests: a bridge, network namespaces with veth
pairs, a small HTTP server in each, and routes for Service IPs to the bridge (so no
packet to a ClusterIP ever leaves the machine). Every name carries a per-test token and
everything is removed at teardown, even when the test fails. Needs root on Linux.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Iterator

import pytest

# Runs inside a namespace. socketserver's TCPServer (unlike http.server.HTTPServer) does no
# reverse DNS lookup when binding, so nothing tries to leave the namespace.
HTTP_SERVER = r"""
import http.server, socket, socketserver, sys, threading
name, ip, port, udp_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def udp_echo():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, udp_port))
    while True:
        data, peer = sock.recvfrom(2048)
        sock.sendto(name.encode(), peer)
if udp_port:
    threading.Thread(target=udp_echo, daemon=True).start()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
server = Server((ip, port), Handler)
print("ready", flush=True)
server.serve_forever()
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass
class Pod:
    name: str  # also the network namespace name
    ip: str
    host_veth: str
    server: subprocess.Popen[str] | None = None


@dataclass
class PodNetwork:
    """A bridge with pods; `gateway` (the bridge address) doubles as the node IP."""

    token: str
    bridge: str
    prefix: str  # e.g. "10.213.7"
    pods: list[Pod] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    netns_dirs: list[str] = field(default_factory=list)

    @property
    def subnet(self) -> str:
        return f"{self.prefix}.0/24"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_pod(self, http_port: int | None = 8080, udp_port: int = 0) -> Pod:
        """A namespace on the bridge; with `http_port`, an HTTP server answering its name
        (and with `udp_port`, a UDP server answering every datagram with its name)."""
        index = len(self.pods)
        pod = Pod(f"tkpod-{self.token}-{index}", f"{self.prefix}.{index + 2}", f"tkv-{self.token}-{index}")
        self.pods.append(pod)
        peer = f"tkp-{self.token}-{index}"
        _ip("netns", "add", pod.name)
        _ip("link", "add", pod.host_veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", pod.name)
        _ip("link", "set", pod.host_veth, "master", self.bridge, "up")
        _ip("-n", pod.name, "link", "set", peer, "name", "eth0")
        _ip("-n", pod.name, "addr", "add", f"{pod.ip}/24", "dev", "eth0")
        _ip("-n", pod.name, "link", "set", "eth0", "up")
        _ip("-n", pod.name, "link", "set", "lo", "up")
        _ip("-n", pod.name, "route", "add", "default", "via", self.gateway)
        if http_port is None:
            return pod
        pod.server = subprocess.Popen(
            ["ip", "netns", "exec", pod.name, sys.executable, "-c", HTTP_SERVER, pod.name, pod.ip, str(http_port),
             str(udp_port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = pod.server.stdout.readline() if pod.server.stdout else ""
        if line.strip() != "ready":
            raise RuntimeError(f"http server in {pod.name} did not start: {pod.server.stderr.read() if pod.server.stderr else ''}")
        return pod

    def route_to_bridge(self, cidr: str) -> None:
        """Send `cidr` (a Service IP or range) to the bridge instead of the default route."""
        _ip("route", "add", cidr, "dev", self.bridge)
        self.routes.append(cidr)

    def write_resolv_conf(self, pod: Pod, text: str) -> None:
        """/etc/netns/<pod>/resolv.conf: `ip netns exec` mounts it over /etc/resolv.conf."""
        directory = f"/etc/netns/{pod.name}"
        os.makedirs(directory, exist_ok=True)
        with open(f"{directory}/resolv.conf", "w", encoding="utf-8") as f:
            f.write(text)
        self.netns_dirs.append(directory)

    def teardown(self) -> None:
        for pod in self.pods:
            if pod.server is not None and pod.server.poll() is None:
                pod.server.kill()
                pod.server.wait(timeout=5)
            if pod.server is not None:
                for stream in (pod.server.stdout, pod.server.stderr):
                    if stream:
                        stream.close()
        for cidr in self.routes:
            _ip("route", "del", cidr, "dev", self.bridge, check=False)
        for pod in self.pods:
            _ip("netns", "del", pod.name, check=False)
            _ip("link", "del", pod.host_veth, check=False)
        _ip("link", "del", self.bridge, check=False)
        for directory in self.netns_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        if self.netns_dirs:
            with contextlib.suppress(OSError):  # not empty: another namespace still uses it
                os.rmdir("/etc/netns")


def _free_prefix() -> str:
    """A 10.213.x.0/24 no current route overlaps."""
    routes = _ip("route", "show").stdout
    for _ in range(64):
        prefix = f"10.213.{secrets.randbelow(250) + 1}"
        if f"{prefix}." not in routes:
            return prefix
    raise RuntimeError("no free 10.213.x.0/24 subnet for a test pod network")


def network_available() -> str | None:
    """Why the pod network cannot be built here, or None when it can."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux"
    for tool in ("ip", "iptables", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None


@pytest.fixture
def pod_network() -> Iterator[PodNetwork]:
    """A bridge with no pods yet; call `add_pod()` for each backend."""
    reason = network_available()
    if reason:
        pytest.skip(reason)
    token = secrets.token_hex(2)
    net = PodNetwork(token=token, bridge=f"tkbr-{token}", prefix=_free_prefix())
    try:
        net.create()
        yield net
    finally:
        net.teardown()
