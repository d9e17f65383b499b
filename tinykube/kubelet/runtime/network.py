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
import functools
import ipaddress
import logging
import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tinykube.kubelet.runtime import netlink

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

    @functools.cached_property
    def _host_list(self) -> list[str] | None:
        """The subnet's host addresses but the gateway, lowest first, computed once (walking
        ``subnet.hosts()`` for every allocation costs more than the reservation itself);
        None for subnets too large to list."""
        if self.subnet.num_addresses > 1 << 16:
            return None
        return list(self._hosts())

    def _hosts(self) -> Iterator[str]:
        gateway = self.gateway
        return (ip for ip in map(str, self.subnet.hosts()) if ip != gateway)

    def _candidates(self) -> Iterable[str]:
        return self._host_list if self._host_list is not None else self._hosts()

    def allocate(self, owner: str) -> str:
        os.makedirs(self.directory, exist_ok=True)
        for ip in self._candidates():
            if ip not in self.allocated and self._reserve(ip, owner):
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
    # a burst of new pods all wait for the one set-up (and never insert the guard twice)
    _bridge_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.ipam = IPAM(ipaddress.ip_network(self.pod_cidr, strict=False))

    async def ensure_bridge(self) -> None:
        """Create the bridge with the gateway address and the Service CIDR route (idempotent)."""
        if self._ready:
            return
        async with self._bridge_lock:
            if not self._ready:
                await self._setup_bridge()

    async def _setup_bridge(self) -> None:
        try:
            await netlink.run(_setup_bridge_link, self.bridge, self.ipam.gateway, self.ipam.subnet.prefixlen)
        except OSError as exc:
            raise NetworkError(f"setting up bridge {self.bridge}: {exc}") from exc
        allow_loopback_endpoints(self.bridge)
        await forward_within_bridge(self.bridge)
        # "add", not "replace": never take over a route another bridge already holds
        service = ipaddress.ip_network(self.service_cidr, strict=False)
        try:
            await netlink.run(netlink.Netlink.add_route, str(service.network_address), service.prefixlen,
                              socket.if_nametoindex(self.bridge))
        except OSError as exc:
            log.info("route %s via %s not added: %s", self.service_cidr, self.bridge, exc)
        self._ready = True

    async def attach(self, sandbox_id: str, pid: int) -> None:
        """Create the veth pair with ``eth0`` in the namespace of process ``pid`` and the host
        end on the bridge (hairpin on, up); the pod side is configured from inside. Netlink
        requests on the netlink thread, not ``ip`` runs: no fork per pod."""
        host_if = "veth" + sandbox_id[:8]
        try:
            await netlink.run(_plug_veth, host_if, pid, self.mtu, self.bridge)
        except OSError as exc:
            raise NetworkError(f"creating {host_if} on {self.bridge}: {exc}") from exc

    async def detach(self, sandbox_id: str, ip: str) -> None:
        """Free the address; remove the host end if the namespace has not taken it along."""
        host_if = "veth" + sandbox_id[:8]
        if os.path.exists(f"/sys/class/net/{host_if}"):
            try:
                await netlink.run(netlink.Netlink.delete_link, host_if)
            except OSError as exc:
                log.warning("deleting %s: %s", host_if, exc)
        self.ipam.release(ip)

    async def teardown(self, sandbox_id: str, ip: str) -> None:
        """Clean up after a sandbox whose processes are gone (kubelet recovery)."""
        await self.detach(sandbox_id, ip)


def _setup_bridge_link(nl: netlink.Netlink, bridge: str, gateway: str, prefix: int) -> None:
    """``ip link add BRIDGE type bridge`` (unless it exists), ``ip addr replace
    GATEWAY/PREFIX dev BRIDGE``, ``ip link set BRIDGE up``."""
    nl.add_bridge(bridge)
    index = socket.if_nametoindex(bridge)
    nl.replace_address(index, gateway, prefix)
    nl.set_up(index)


def _plug_veth(nl: netlink.Netlink, host_if: str, pid: int, mtu: int, bridge: str) -> None:
    """What ``ip link add HOST mtu M type veth peer name eth0 mtu M netns PID; ip link set
    HOST master BRIDGE; ip link set HOST type bridge_slave hairpin on; ip link set HOST up``
    does, in two RTM_NEWLINKs and two sysfs writes. The host end is brought up only once
    IPv6 is off on it: pods are IPv4-only, and an IPv6 link would cost each new pod a
    link-local address, duplicate-address detection and MLD reports through the bridge."""
    nl.add_veth(host_if, "eth0", pid, mtu=mtu, master=socket.if_nametoindex(bridge), up=False)
    try:
        _disable_ipv6(host_if)
        Path(f"/sys/class/net/{host_if}/brport/hairpin_mode").write_text("1\n")
        nl.set_up(socket.if_nametoindex(host_if))
    except OSError:
        nl.delete_link(host_if)
        raise


def _disable_ipv6(interface: str) -> None:
    try:
        Path(f"/proc/sys/net/ipv6/conf/{interface}/disable_ipv6").write_text("1\n")
    except FileNotFoundError:
        pass  # a kernel without IPv6


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


async def _drop_stale_guards(keep: str = "") -> bool:
    """Remove the egress guards of bridges that no longer exist (a kubelet that was killed,
    or a bridge deleted by hand, leaves its guard behind); True when ``keep``'s is there."""
    _, out, _ = await _iptables("-S", "FORWARD")
    present = False
    for line in out.splitlines():
        words = line.split()
        if "tinykube: no pod traffic leaves the node" not in line or "-i" not in words:
            continue
        name = words[words.index("-i") + 1]
        if name == keep:
            present = True
        elif not Path(f"/sys/class/net/{name}").exists():
            await _iptables("-D", *_egress_guard(name))
    return present


async def forward_within_bridge(bridge: str) -> None:
    """Turn on IPv4 forwarding, which a Service needs between two pods of the bridge (the
    DNAT'd packet is routed back onto it), and drop whatever pods would send beyond the
    bridge: pods of a tinykube node talk to each other and to the node, never outside."""
    present = await _drop_stale_guards(keep=bridge)
    guard = _egress_guard(bridge)
    # the listing shows whether the guard is there already: no `-C` run for a new bridge
    if not present or (await _iptables("-C", *guard))[0] != 0:
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
    if shutil.which("iptables"):  # without it no guard was ever installed
        await _iptables("-D", *_egress_guard(bridge))  # absent already: nothing to remove
