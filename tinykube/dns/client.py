"""A small asyncio DNS client (UDP with TCP fallback on truncation) and the stub resolver's
search-list logic, so tools and tests can ask cluster DNS as a pod's resolver would."""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct

from dnslib import QTYPE, RCODE, DNSRecord

from tinykube import aio


async def query(host: str, port: int, name: str, qtype: str | int = "A", tcp: bool = False,
                timeout: float = 5.0) -> DNSRecord:
    """Send one question and return the parsed response."""
    qtype_name = qtype if isinstance(qtype, str) else QTYPE[qtype]
    request = DNSRecord.question(name, qtype_name)
    request.header.id = secrets.randbelow(65536)
    wire = request.pack()
    raw = await aio.wait_for(_tcp(host, port, wire) if tcp else _udp(host, port, wire), timeout)
    response = DNSRecord.parse(raw)
    if not tcp and response.header.tc:
        return await query(host, port, name, qtype, tcp=True, timeout=timeout)
    return response


async def _udp(host: str, port: int, wire: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, wire)
        return await loop.sock_recv(sock, 65535)


async def _tcp(host: str, port: int, wire: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(wire)) + wire)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()


def candidates(name: str, search: list[str], ndots: int = 5) -> list[str]:
    """The names a stub resolver tries, in order (resolv.conf(5) `search` and `ndots`)."""
    if name.endswith("."):
        return [name]
    expanded = [f"{name}.{domain.strip('.')}." for domain in search]
    absolute = name + "."
    return [absolute, *expanded] if name.count(".") >= ndots else [*expanded, absolute]


def pod_search_list(namespace: str, cluster_domain: str = "cluster.local") -> list[str]:
    """The search list the kubelet writes into a pod's resolv.conf (dnsPolicy ClusterFirst)."""
    return [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]


async def resolve_search(host: str, port: int, name: str, search: list[str], ndots: int = 5,
                         qtype: str = "A") -> tuple[str, list[str]]:
    """Resolve like a pod would: the first candidate with answers; (fqdn, addresses)."""
    for candidate in candidates(name, search, ndots):
        response = await query(host, port, candidate, qtype)
        if response.header.rcode == RCODE.NOERROR and response.rr:
            return candidate, [str(rr.rdata) for rr in response.rr if rr.rtype == getattr(QTYPE, qtype)]
    return "", []
