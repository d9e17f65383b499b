"""kube-proxy's userspace mode: an asyncio TCP/UDP proxy per service port, no root needed.

Each service port gets a listener (by default on the proxy's address and the service port;
tests map ports to free ones). Connections go round robin over the usable endpoints, or
stick to the client's endpoint while ClientIP affinity holds. Endpoint changes apply live:
the listener stays, the balancer's list is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from tinykube import aio
from tinykube.proxy.changes import AppliedChanges, ChangeTracker
from tinykube.proxy.model import Endpoint, ServicePort, Snapshot, usable_endpoints

log = logging.getLogger(__name__)

Address = tuple[str, int]
CONNECT_TIMEOUT = 2.0
UDP_IDLE_TIMEOUT = 1.0  # seconds a UDP client mapping lives without traffic
BUFFER = 65536


@dataclass
class Balancer:
    """Round robin with optional ClientIP affinity over one port's endpoints."""

    affinity_timeout: int = 0
    endpoints: tuple[Endpoint, ...] = ()
    _next: int = 0
    _affinity: dict[str, tuple[Endpoint, float]] = field(default_factory=dict)

    def update(self, endpoints: tuple[Endpoint, ...], affinity_timeout: int) -> None:
        self.endpoints = endpoints
        self.affinity_timeout = affinity_timeout
        alive = set(endpoints)
        self._affinity = {ip: v for ip, v in self._affinity.items() if v[0] in alive}

    def pick(self, client_ip: str, now: float | None = None) -> Endpoint | None:
        """The endpoint for a new connection from `client_ip`, None when there is none."""
        if not self.endpoints:
            return None
        now = time.monotonic() if now is None else now
        if self.affinity_timeout:
            held = self._affinity.get(client_ip)
            if held and now - held[1] <= self.affinity_timeout:
                self._affinity[client_ip] = (held[0], now)
                return held[0]
        ep = self.endpoints[self._next % len(self.endpoints)]
        self._next = (self._next + 1) % len(self.endpoints)
        if self.affinity_timeout:
            self._affinity[client_ip] = (ep, now)
        return ep

    def after_failure(self, failed: Endpoint, client_ip: str) -> Endpoint | None:
        """Another endpoint after `failed` refused a connection (affinity dropped)."""
        self._affinity.pop(client_ip, None)
        others = [e for e in self.endpoints if e != failed]
        if not others:
            return None
        ep = others[self._next % len(others)]
        self._next = (self._next + 1) % max(1, len(self.endpoints))
        return ep


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # the other direction notices and closes too
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class TCPListener:
    """Accepts connections for one service port and splices them to an endpoint."""

    def __init__(self, balancer: Balancer) -> None:
        self.balancer = balancer
        self.server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, address: Address) -> Address:
        self.server = await asyncio.start_server(self._handle, address[0], address[1])
        return self.server.sockets[0].getsockname()[:2]

    async def _connect(self, client_ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        ep = self.balancer.pick(client_ip)
        tried = 0
        while ep is not None and tried < 4:  # upstream retries a few endpoints
            try:
                return await aio.wait_for(asyncio.open_connection(ep.ip, ep.port), CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                log.info("userspace: endpoint %s failed: %s", ep.address, exc)
                ep = self.balancer.after_failure(ep, client_ip)
                tried += 1
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        client_ip = writer.get_extra_info("peername")[0]
        try:
            backend = await self._connect(client_ip)
            if backend is None:
                return  # no endpoints: the client sees the connection closed
            b_reader, b_writer = backend
            try:
                await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer))
            finally:
                b_writer.close()
        finally:
            writer.close()
            self._connections.discard(task)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)


class _Backend(asyncio.DatagramProtocol):
    """One client's UDP flow to its endpoint; replies go back through the listener."""

    def __init__(self, listener: UDPListener, client: Address) -> None:
        self.listener, self.client = listener, client
        self.transport: asyncio.DatagramTransport | None = None
        self.last_used = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.last_used = time.monotonic()
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        log.debug("userspace udp backend error for %s: %s", self.client, exc)


class UDPListener(asyncio.DatagramProtocol):
    """Relays datagrams for one service port; one backend socket per client address."""

    def __init__(self, balancer: Balancer, idle_timeout: float = UDP_IDLE_TIMEOUT) -> None:
        self.balancer = balancer
        self.idle_timeout = idle_timeout
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[Address, _Backend] = {}
        self._opening: dict[Address, list[bytes]] = {}  # datagrams waiting for their flow
        self._pending: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def start(self, address: Address) -> Address:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=address)
        self.transport = transport
        self._reaper = asyncio.create_task(self._reap())
        return transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        flow = self.flows.get(addr)
        if flow is not None and flow.transport is not None:
            flow.last_used = time.monotonic()
            flow.transport.sendto(data)
            return
        if addr in self._opening:
            self._opening[addr].append(data)
            return
        self._opening[addr] = [data]
        task = asyncio.create_task(self._open_flow(addr))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _open_flow(self, addr: Address) -> None:
        """Connect a socket to an endpoint for this client, then send what queued up."""
        try:
            ep = self.balancer.pick(addr[0])
            if ep is None:
                return  # no endpoints: drop, as a REJECTed datagram would be
            loop = asyncio.get_running_loop()
            transport, flow = await loop.create_datagram_endpoint(
                lambda: _Backend(self, addr), remote_addr=(ep.ip, ep.port))
            self.flows[addr] = flow
            for data in self._opening.get(addr, ()):
                transport.sendto(data)
        except OSError as exc:
            log.info("userspace udp: cannot reach an endpoint for %s: %s", addr, exc)
        finally:
            self._opening.pop(addr, None)

    async def _reap(self) -> None:
        """Close flows idle longer than `idle_timeout` (UDP has no close to wait for)."""
        while True:
            await asyncio.sleep(self.idle_timeout)
            now = time.monotonic()
            for addr, flow in list(self.flows.items()):
                if now - flow.last_used > self.idle_timeout and flow.transport is not None:
                    flow.transport.close()
                    del self.flows[addr]

    def drop_flows_to(self, gone: set[Endpoint]) -> None:
        """Forget flows whose endpoint went away (the userspace conntrack cleanup)."""
        addrs = {(e.ip, e.port) for e in gone}
        for client, flow in list(self.flows.items()):
            peer = flow.transport.get_extra_info("peername") if flow.transport else None
            if peer and tuple(peer[:2]) in addrs:
                flow.transport.close()  # type: ignore[union-attr]
                del self.flows[client]

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        self.flows.clear()
        if self.transport is not None:
            self.transport.close()


@dataclass
class PortProxy:
    """The listeners and balancer of one service port."""

    port: ServicePort
    balancer: Balancer
    listeners: list[TCPListener | UDPListener]
    addresses: list[Address]


def default_addresses(bind_address: str) -> Callable[[ServicePort], list[Address]]:
    """Listen on `bind_address` at the service port, and at the node port when set."""

    def addresses(port: ServicePort) -> list[Address]:
        result = [(bind_address, port.port)]
        if port.node_port:
            result.append((bind_address, port.node_port))
        return result

    return addresses


class UserspaceProxier:
    """Reconciles listeners with the snapshot on each sync."""

    def __init__(self, addresses: Callable[[ServicePort], list[Address]],
                 udp_idle_timeout: float = UDP_IDLE_TIMEOUT) -> None:
        self.addresses = addresses
        self.udp_idle_timeout = udp_idle_timeout
        self.tracker = ChangeTracker()
        self.snapshot = Snapshot()
        self.ports: dict[str, PortProxy] = {}

    def bound(self, key: str) -> list[Address]:
        """Where the service port `ns/name:port` is listening (after a sync)."""
        proxy = self.ports.get(key)
        return list(proxy.addresses) if proxy else []

    async def sync(self) -> AppliedChanges:
        changes = self.tracker.apply(self.snapshot)
        for key in changes.port_keys:
            await self._sync_port(key)
        return changes

    async def _sync_port(self, key: str) -> None:
        port = self.snapshot.services.get(key)
        current = self.ports.get(key)
        if current is not None and (port is None or _listen_shape(current.port) != _listen_shape(port)):
            await self._close(key)
            current = None
        if port is None:
            return
        eps = usable_endpoints(self.snapshot.endpoints.get(key, ()))
        if current is None:
            current = await self._open(port)
            if current is None:
                return
        gone = set(current.balancer.endpoints) - set(eps)
        current.port = port
        current.balancer.update(eps, port.affinity_timeout)
        if gone:
            for listener in current.listeners:
                if isinstance(listener, UDPListener):
                    listener.drop_flows_to(gone)

    async def _open(self, port: ServicePort) -> PortProxy | None:
        if port.protocol not in ("TCP", "UDP"):
            log.warning("userspace: %s: protocol %s is not supported", port.key, port.protocol)
            return None
        balancer = Balancer(port.affinity_timeout)
        proxy = PortProxy(port, balancer, [], [])
        for address in self.addresses(port):
            listener: TCPListener | UDPListener = (
                TCPListener(balancer) if port.protocol == "TCP" else UDPListener(balancer, self.udp_idle_timeout))
            try:
                proxy.addresses.append(await listener.start(address))
            except OSError as exc:
                log.error("userspace: %s: cannot listen on %s:%d: %s", port.key, *address, exc)
                continue
            proxy.listeners.append(listener)
        self.ports[port.key] = proxy
        return proxy

    async def _close(self, key: str) -> None:
        proxy = self.ports.pop(key, None)
        if proxy is not None:
            for listener in proxy.listeners:
                await listener.stop()

    async def stop(self) -> None:
        for key in list(self.ports):
            await self._close(key)


def _listen_shape(port: ServicePort) -> tuple[str, int, int]:
    """What decides the listeners; a change to it means re-listening."""
    return (port.protocol, port.port, port.node_port)
