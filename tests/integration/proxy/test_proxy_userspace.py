"""Userspace mode against the API server: real sockets on loopback, no root needed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import AsyncIterator

import orjson
import pytest
from aiohttp import ClientSession

from tinykube.testing.services import endpoint_slice, service
from tinykube.proxy.server import Proxy

KEY = "default/web:http"


async def _named_server(name: str) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name.encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@contextlib.asynccontextmanager
async def backends(*names: str) -> AsyncIterator[dict[str, int]]:
    servers = {name: await _named_server(name) for name in names}
    try:
        yield {name: s.sockets[0].getsockname()[1] for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.close()
            await s.wait_closed()


async def fetch(address: tuple[str, int]) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*address), 5)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def slice_for(name: str, port: int) -> dict:
    return endpoint_slice("web", ["127.0.0.1"], name=name, ports=[{"name": "http", "port": port, "protocol": "TCP"}])


@pytest.fixture
async def proxy(start_proxy) -> Proxy:  # type: ignore[no-untyped-def]
    return await start_proxy(mode="userspace",
                             userspace_addresses=lambda port: [("127.0.0.1", 0)])


async def test_userspace_round_robin_affinity_and_live_endpoints(api, proxy: Proxy) -> None:  # type: ignore[no-untyped-def]
    slices = api.resource("endpointslices", "discovery.k8s.io")
    async with backends("pod-a", "pod-b") as ports:
        await api.resource("services").create(service("web", "10.96.10.10"), namespace="default")
        await slices.create(slice_for("web-a", ports["pod-a"]), namespace="default")
        await slices.create(slice_for("web-b", ports["pod-b"]), namespace="default")
        await proxy.wait_until(lambda: len(proxy.endpoints_of(KEY)) == 2)
        (address,) = proxy.proxier.bound(KEY)

        seen = [await fetch(address) for _ in range(6)]
        assert sorted(seen) == [b"pod-a"] * 3 + [b"pod-b"] * 3  # round robin

        await api.resource("services").patch(
            "web", {"spec": {"sessionAffinity": "ClientIP"}}, namespace="default", patch_type="merge")
        await proxy.wait_until(lambda: proxy.proxier.snapshot.services[KEY].affinity_timeout == 10800)
        sticky = {await fetch(address) for _ in range(5)}
        assert len(sticky) == 1

        await slices.delete("web-a", namespace="default")
        await proxy.wait_until(lambda: len(proxy.endpoints_of(KEY)) == 1)
        assert {await fetch(address) for _ in range(4)} == {b"pod-b"}

        await slices.delete("web-b", namespace="default")
        await proxy.wait_until(lambda: proxy.endpoints_of(KEY) == [])
        assert await fetch(address) == b""  # no endpoints: connection closed at once


async def test_userspace_udp(api, proxy: Proxy) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):  # type: ignore[no-untyped-def]
            self.transport = transport

        def datagram_received(self, data: bytes, addr):  # type: ignore[no-untyped-def]
            self.transport.sendto(b"echo:" + data, addr)

    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        await api.resource("services").create(
            service("dns", "10.96.10.53", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]), namespace="default")
        await api.resource("endpointslices", "discovery.k8s.io").create(
            endpoint_slice("dns", ["127.0.0.1"], ports=[{"name": "dns", "port": port, "protocol": "UDP"}]),
            namespace="default")
        await proxy.wait_until(lambda: len(proxy.endpoints_of("default/dns:dns")) == 1)
        (address,) = proxy.proxier.bound("default/dns:dns")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)  # the proxy shares this event loop
            sock.sendto(b"hello", address)
            assert await asyncio.wait_for(loop.sock_recv(sock, 100), 5) == b"echo:hello"
    finally:
        transport.close()


async def test_healthz_and_metrics(api, proxy: Proxy) -> None:  # type: ignore[no-untyped-def]
    await proxy.wait_synced()
    async with ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{proxy.healthz_port}/healthz") as resp:
            assert resp.status == 200
            body = orjson.loads(await resp.read())
            assert body["nodeEligible"] is True and body["lastUpdated"].endswith("Z")
            assert set(body) == {"lastUpdated", "currentTime", "nodeEligible"}
        async with http.get(f"http://127.0.0.1:{proxy.healthz_port}/livez") as resp:
            assert resp.status == 200
        async with http.get(f"http://127.0.0.1:{proxy.metrics_port}/metrics") as resp:
            text = await resp.text()
            assert "kubeproxy_sync_proxy_rules_last_timestamp_seconds" in text
            assert "kubeproxy_sync_proxy_rules_duration_seconds_bucket" in text
    proxy.health.oldest_queued = 1.0  # a change queued long ago and never synced
    async with ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{proxy.healthz_port}/healthz") as resp:
            assert resp.status == 503
