"""The node's pod network: a Linux bridge and one veth pair per pod network namespace.

What a bridge CNI plugin with host-local IPAM does: the bridge holds the first address of
the node's podCIDR and is every pod's default gateway; each pod gets the next free address
and ``eth0`` in its own namespace; hairpin mode lets a pod reach itself through a Service.
The Service CIDR is routed to the bridge so no ClusterIP packet leaves by the default route.
The namespace itself belongs to the sandbox's pause process (so it disappears with the pod)
and the sandbox shim configures the pod side; this module does the host side.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)



class NetworkError(Exception):
    """Setting up or tearing down a pod's network failed."""


async def run_ip(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


IPAM_DIR = "/run/tinykube/ipam"


@dataclass
class IPAM:
    """host-local style allocation from one subnet; .1 is the gateway.

    Like CNI's host-local plugin, each address is reserved by creating a file named after
    it (O_EXCL, so kubelets sharing a bridge and subnet never hand out the same address);
    the file holds the owner and the kubelet's PID so stale reservations can be reclaimed.
    """

    subnet: ipaddress.IPv4Network
    directory: str = ""
    allocated: dict[str, str] = field(default_factory=dict)  # ip -> owner

    def __post_init__(self) -> None:
        if not self.directory:
            self.directory = os.path.join(IPAM_DIR, str(self.subnet).replace("/", "_"))

    @property
    def gateway(self) -> str:
        return str(self.subnet.network_address + 1)

    def _reserve(self, ip: str, owner: str) -> bool:
        path = os.path.join(self.directory, ip)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if not _stale(path):
                return False
            os.unlink(path)
            return self._reserve(ip, owner)
        with os.fdopen(fd, "w") as f:
            f.write(f"{owner} {os.getpid()}\n")
        return True

    def allocate(self, owner: str) -> str:
        os.makedirs(self.directory, exist_ok=True)
        for host in self.subnet.hosts():
            ip = str(host)
            if ip != self.gateway and ip not in self.allocated and self._reserve(ip, owner):
                self.allocated[ip] = owner
                return ip
        raise NetworkError(f"no IP addresses available in range set: {self.subnet}")

    def release(self, ip: str) -> None:
        if self.allocated.pop(ip, None) is not None:
            try:
                os.unlink(os.path.join(self.directory, ip))
            except FileNotFoundError:
                pass
            if not self.allocated:
                try:
                    os.rmdir(self.directory)  # fails while another kubelet holds addresses here
                except OSError:
                    pass


def _stale(path: str) -> bool:
    """A reservation whose kubelet process is gone."""
    try:
        with open(path) as f:
            pid = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class PodNetwork:
    bridge: str
    pod_cidr: str
    service_cidr: str = "10.96.0.0/12"
    mtu: int = 1500
    ipam: IPAM = field(init=False)
    _ready: bool = False
    # netlink changes serialize on the kernel's rtnl lock: more parallel `ip` runs only
    # add contention, so a few at a time is fastest
    _limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))

    def __post_init__(self) -> None:
        self.ipam = IPAM(ipaddress.ip_network(self.pod_cidr, strict=False))

    async def ensure_bridge(self) -> None:
        """Create the bridge with the gateway address and the Service CIDR route (idempotent)."""
        if self._ready:
            return
        prefix = self.ipam.subnet.prefixlen
        existing = await run_ip("-o", "link", "show", "dev", self.bridge, check=False)
        if not existing.strip():
            await run_ip("link", "add", self.bridge, "type", "bridge")
        await run_ip("addr", "replace", f"{self.ipam.gateway}/{prefix}", "dev", self.bridge)
        await run_ip("link", "set", self.bridge, "up")
        allow_loopback_endpoints(self.bridge)
        await forward_within_bridge(self.bridge)
        # "add", not "replace": never take over a route another bridge already holds
        await run_ip("route", "add", self.service_cidr, "dev", self.bridge, check=False)
        self._ready = True

    async def attach(self, sandbox_id: str, pid: int) -> None:
        """Create the veth pair with ``eth0`` in the namespace of process ``pid`` and the host
        end on the bridge (hairpin on); the pod side is configured from inside."""
        host_if = "veth" + sandbox_id[:8]
        async with self._limit:
            await run_ip("-batch", "-", stdin="\n".join([
                f"link add {host_if} mtu {self.mtu} type veth peer name eth0 mtu {self.mtu} netns {pid}",
                f"link set {host_if} master {self.bridge}",
                f"link set {host_if} type bridge_slave hairpin on",
                f"link set {host_if} up",
            ]) + "\n")

    async def detach(self, sandbox_id: str, ip: str) -> None:
        """Free the address; remove the host end if the namespace has not taken it along."""
        host_if = "veth" + sandbox_id[:8]
        if os.path.exists(f"/sys/class/net/{host_if}"):
            await run_ip("link", "del", host_if, check=False)
        self.ipam.release(ip)

    async def teardown(self, sandbox_id: str, ip: str) -> None:
        """Clean up after a sandbox whose processes are gone (kubelet recovery)."""
        await self.detach(sandbox_id, ip)


async def _iptables(*args: str) -> tuple[int, str, str]:
    """Run ``iptables -w ARGS``; returns (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        "iptables", "-w", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def _egress_guard(bridge: str) -> list[str]:
    return ["FORWARD", "-i", bridge, "!", "-o", bridge, "-m", "comment", "--comment",
            "tinykube: no pod traffic leaves the node", "-j", "DROP"]


async def _drop_stale_guards() -> None:
    """Remove the egress guards of bridges that no longer exist (a kubelet that was killed,
    or a bridge deleted by hand, leaves its guard behind)."""
    _, out, _ = await _iptables("-S", "FORWARD")
    for line in out.splitlines():
        words = line.split()
        if "tinykube: no pod traffic leaves the node" not in line or "-i" not in words:
            continue
        name = words[words.index("-i") + 1]
        if not Path(f"/sys/class/net/{name}").exists():
            await _iptables("-D", *_egress_guard(name))


async def forward_within_bridge(bridge: str) -> None:
    """Turn on IPv4 forwarding, which a Service needs between two pods of the bridge (the
    DNAT'd packet is routed back onto it), and drop whatever pods would send beyond the
    bridge: pods of a tinykube node talk to each other and to the node, never outside."""
    await _drop_stale_guards()
    guard = _egress_guard(bridge)
    if (await _iptables("-C", *guard))[0] != 0:
        code, _, err = await _iptables("-I", *guard)
        if code != 0:
            raise NetworkError(f"cannot install the pod egress guard: {err.strip()}")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")


def allow_loopback_endpoints(bridge: str) -> None:
    """Let packets from pods reach the node's loopback once kube-proxy DNATs them there
    (``route_localnet`` on the bridge only): the control plane runs on the host network and
    listens on 127.0.0.1, so the ``kubernetes`` and ``kube-dns`` Services' endpoints are
    127.0.0.1. Upstream kube-proxy sets the same sysctl (on every interface) for localhost
    NodePorts; a pod cannot address the node's loopback without such a DNAT, since 127/8
    inside its namespace is its own loopback."""
    path = Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
    try:
        path.write_text("1\n")
    except OSError as exc:
        log.warning("cannot enable route_localnet on %s: %s", bridge, exc)


async def remove_bridge(bridge: str) -> None:
    """Delete the bridge (and with it the routes through it) and its egress guard."""
    await run_ip("link", "del", bridge, check=False)
    await _iptables("-D", *_egress_guard(bridge))  # absent already: nothing to remove
