"""The DNS server against the API server, queried over UDP and TCP on loopback."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp import ClientSession
from dnslib import QTYPE, RCODE

from tinykube.dns.client import pod_search_list, query, resolve_search
from tinykube.dns.config import DNSConfig
from tinykube.dns.kubedns import ensure_kube_dns_service
from tinykube.dns.server import DNSServer
from tinykube.testing.services import endpoint_slice, service

WEB = "web-service.default.svc.cluster.local"


@pytest.fixture
async def api(apiserver):  # type: ignore[no-untyped-def]
    client = apiserver.client()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def dns(api) -> AsyncIterator[DNSServer]:  # type: ignore[no-untyped-def]
    server = DNSServer(DNSConfig(client=api, port=0, health_port=0, ready_port=0, metrics_port=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def eventually(dns: DNSServer, name: str, qtype: str, check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Query until `check(response)` holds; each retry waits for the next informer event."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        seen = dns.generation
        response = await query("127.0.0.1", dns.port, name, qtype)
        if check(response):
            return response
        if not await dns.changed(seen, deadline - loop.time()):
            raise AssertionError(f"{name} {qtype}: last answer {response}")


def addresses(response) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(str(rr.rdata) for rr in response.rr if rr.rtype == QTYPE.A)


async def test_service_a_record_over_udp_and_tcp_and_updates(api, dns: DNSServer) -> None:  # type: ignore[no-untyped-def]
    services = api.resource("services")
    await services.create(service("web-service", "10.96.0.100"), namespace="default")
    response = await eventually(dns, WEB, "A", lambda r: addresses(r) == ["10.96.0.100"])
    assert response.header.aa and response.rr[0].ttl == 5
    tcp = await query("127.0.0.1", dns.port, WEB, "A", tcp=True)
    assert addresses(tcp) == ["10.96.0.100"]

    await services.delete("web-service", namespace="default")
    gone = await eventually(dns, WEB, "A", lambda r: r.header.rcode == RCODE.NXDOMAIN)
    assert gone.auth and gone.auth[0].rtype == QTYPE.SOA


async def test_headless_service_follows_endpoint_slices(api, dns: DNSServer) -> None:  # type: ignore[no-untyped-def]
    slices = api.resource("endpointslices", "discovery.k8s.io")
    await api.resource("services").create(
        service("db", "None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]), namespace="default")
    pg = [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    await slices.create(endpoint_slice("db", ["10.244.1.7", "10.244.2.8"], ports=pg), namespace="default")
    name = "db.default.svc.cluster.local"
    await eventually(dns, name, "A", lambda r: addresses(r) == ["10.244.1.7", "10.244.2.8"])
    srv = await query("127.0.0.1", dns.port, "_pg._tcp." + name, "SRV")
    assert sorted(str(rr.rdata.target) for rr in srv.rr) == [
        "10-244-1-7.db.default.svc.cluster.local.", "10-244-2-8.db.default.svc.cluster.local."]

    await slices.update(endpoint_slice("db", ["10.244.2.8"], ports=pg) | {
        "metadata": (await slices.get("db-abcde", namespace="default"))["metadata"]})
    await eventually(dns, name, "A", lambda r: addresses(r) == ["10.244.2.8"])


async def test_short_name_resolves_through_the_pod_search_path(api, dns: DNSServer) -> None:  # type: ignore[no-untyped-def]
    await api.resource("services").create(service("web-service", "10.96.0.100"), namespace="default")
    await eventually(dns, WEB, "A", lambda r: bool(r.rr))
    fqdn, ips = await resolve_search("127.0.0.1", dns.port, "web-service", pod_search_list("default"))
    assert (fqdn, ips) == (WEB + ".", ["10.96.0.100"])
    fqdn, _ = await resolve_search("127.0.0.1", dns.port, "web-service.default", pod_search_list("other"))
    assert fqdn == "web-service.default.svc.cluster.local."


async def test_outside_names_are_refused_and_garbage_gets_formerr(dns: DNSServer) -> None:
    import asyncio
    import socket

    response = await query("127.0.0.1", dns.port, "example.com", "A")
    assert response.header.rcode == RCODE.REFUSED and not response.rr
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", dns.port))
        await loop.sock_sendall(sock, b"\x12\x34" + b"\x01\x00" + b"\x00\x01" + b"\x00" * 6 + b"\xff\xff")
        raw = await asyncio.wait_for(loop.sock_recv(sock, 512), 5)
    assert raw[:2] == b"\x12\x34" and raw[3] & 0x0F == RCODE.FORMERR


async def test_kube_dns_service_health_ready_and_metrics(api, dns: DNSServer) -> None:  # type: ignore[no-untyped-def]
    first = await ensure_kube_dns_service(api)
    again = await ensure_kube_dns_service(api)
    assert first["metadata"]["uid"] == again["metadata"]["uid"]
    assert first["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["name"], p["port"], p["protocol"]) for p in first["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    await eventually(dns, "kube-dns.kube-system.svc.cluster.local", "A", lambda r: addresses(r) == ["10.96.0.10"])
    ptr = await query("127.0.0.1", dns.port, "10.0.96.10.in-addr.arpa", "PTR")
    assert str(ptr.rr[0].rdata) == "kube-dns.kube-system.svc.cluster.local."
    async with ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{dns.health_port}/health") as resp:
            assert resp.status == 200 and await resp.text() == "OK"
        async with http.get(f"http://127.0.0.1:{dns.ready_port}/ready") as resp:
            assert resp.status == 200
        async with http.get(f"http://127.0.0.1:{dns.metrics_port}/metrics") as resp:
            text = await resp.text()
    assert 'coredns_dns_requests_total{' in text and 'zone="cluster.local."' in text
    assert 'rcode="NOERROR"' in text
