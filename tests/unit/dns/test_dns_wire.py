"""The server's wire handling, called directly: flags, REFUSED, FORMERR, truncation."""

from __future__ import annotations

import asyncio

from dnslib import EDNS0, RCODE, DNSRecord

from tinykube.dns.config import DNSConfig
from tinykube.dns.records import Resolver
from tinykube.dns.server import DNSServer
from tinykube.dns.view import StaticView
from tinykube.testing.services import endpoint_slice, service


def server_with(services: list[dict], slices: list[dict], **config: object) -> DNSServer:
    server = DNSServer(DNSConfig(port=0, **config))  # type: ignore[arg-type]
    server.resolver = Resolver(StaticView(services, slices))
    return server


async def ask(server: DNSServer, name: str, qtype: str = "A", proto: str = "udp", edns: bool = False) -> DNSRecord:
    request = DNSRecord.question(name, qtype)
    if edns:
        request.add_ar(EDNS0(udp_len=4096))
    raw = await server.handle(request.pack(), proto)
    assert raw is not None
    return DNSRecord.parse(raw)


async def test_authoritative_answer_echoes_the_question() -> None:
    reply = await ask(server_with([service("web", "10.96.0.100")], []), "web.default.svc.cluster.local")
    assert reply.header.aa == 1 and reply.header.qr == 1 and reply.header.rcode == RCODE.NOERROR
    assert str(reply.q.qname) == "web.default.svc.cluster.local."


async def test_outside_the_domain_is_refused_without_forwarders() -> None:
    reply = await ask(server_with([], []), "kubernetes.io")
    assert reply.header.rcode == RCODE.REFUSED and not reply.rr


async def test_garbage_and_unsupported_opcodes() -> None:
    server = server_with([], [])
    assert await server.handle(b"\x00\x01", "udp") is None  # not even a header: dropped
    formerr = await server.handle(b"\xab\xcd\x01\x00\x00\x01" + b"\x00" * 6 + b"\x07", "udp")
    assert formerr is not None and formerr[:2] == b"\xab\xcd" and formerr[3] & 0x0F == RCODE.FORMERR
    notify = DNSRecord.question("cluster.local", "SOA")
    notify.header.opcode = 4
    reply = DNSRecord.parse(await server.handle(notify.pack(), "udp") or b"")
    assert reply.header.rcode == RCODE.NOTIMP


async def test_big_headless_answer_is_truncated_over_udp_but_not_tcp() -> None:
    addresses = [f"10.244.{i // 250}.{i % 250 + 1}" for i in range(60)]
    server = server_with([service("big", "None")], [endpoint_slice("big", addresses)])
    udp = await ask(server, "big.default.svc.cluster.local")
    assert udp.header.tc == 1 and not udp.rr
    tcp = await ask(server, "big.default.svc.cluster.local", proto="tcp")
    assert tcp.header.tc == 0 and len(tcp.rr) == 60
    edns = await ask(server, "big.default.svc.cluster.local", edns=True)
    assert edns.header.tc == 0 and len(edns.rr) == 60  # fits the advertised 4096 bytes


async def test_forwarding_is_opt_in_and_relays_to_the_upstream() -> None:
    """Forward to a second server on loopback, acting as the upstream resolver."""
    loop = asyncio.get_running_loop()

    class Upstream(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.transport = transport

        def datagram_received(self, data: bytes, addr):  # type: ignore[no-untyped-def]
            request = DNSRecord.parse(data)
            reply = request.reply()
            reply.header.rcode = RCODE.NXDOMAIN
            self.transport.sendto(reply.pack(), addr)

    transport, _ = await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        forwarding = server_with([], [], forward=[f"127.0.0.1:{port}"], forward_timeout=2.0)
        reply = await ask(forwarding, "example.org")
        assert reply.header.rcode == RCODE.NXDOMAIN  # the upstream's answer, relayed
        dead = server_with([], [], forward=["127.0.0.1:9"], forward_timeout=0.2)
        assert (await ask(dead, "example.org")).header.rcode == RCODE.SERVFAIL
    finally:
        transport.close()


async def test_answer_cache_is_dropped_on_every_informer_event() -> None:
    server = server_with([service("web", "10.96.0.100")], [])
    first = await ask(server, "web.default.svc.cluster.local")
    again = await ask(server, "web.default.svc.cluster.local")
    assert str(first.rr[0].rdata) == str(again.rr[0].rdata) == "10.96.0.100"
    server.resolver = Resolver(StaticView([service("web", "10.96.0.200")], []))
    server._bump()  # what the informer handlers call on any Service/EndpointSlice change
    assert str((await ask(server, "web.default.svc.cluster.local")).rr[0].rdata) == "10.96.0.200"


async def test_cached_answer_carries_the_new_query_id() -> None:
    server = server_with([service("web", "10.96.0.100")], [])
    for qid in (1, 2):
        request = DNSRecord.question("web.default.svc.cluster.local", "A")
        request.header.id = qid
        raw = await server.handle(request.pack(), "udp")
        assert raw is not None and DNSRecord.parse(raw).header.id == qid
