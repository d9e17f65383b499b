"""`DNSServer`: cluster DNS over UDP and TCP, with /health, /ready and /metrics.

Answers come from `Resolver` over informer caches, so a Service change is visible to the
next query. Names outside the cluster domain are REFUSED unless upstream resolvers are
configured in `DNSConfig.forward`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import struct
import time
from typing import Any

from aiohttp import web
from dnslib import QTYPE, RCODE, DNSError, DNSRecord
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tinykube import aio
from tinykube.dns.config import DNSConfig
from tinykube.dns.forward import forward_query
from tinykube.dns.metrics import DNSMetrics
from tinykube.dns.records import Resolver
from tinykube.dns.view import SERVICE_INDEXES, SLICE_INDEXES, CacheView

log = logging.getLogger(__name__)

UDP_DEFAULT_SIZE = 512
CACHE_SIZE = 10000  # answers kept until the next Service/EndpointSlice event
VERSION = "1.11.1"  # the CoreDNS version whose behaviour this follows


class DNSServer:
    """One cluster DNS server: `await start()`, then query `port` on `bind_address`."""

    def __init__(self, config: DNSConfig) -> None:
        self.config = config
        self.metrics = DNSMetrics(VERSION)
        self.port = 0
        self.tcp_port = 0
        self.health_port = 0
        self.ready_port = 0
        self.metrics_port = 0
        self.resolver: Resolver | None = None
        self._client: Any = None
        self._owns_client = False
        self._factory: Any = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tcp_tasks: set[asyncio.Task[None]] = set()
        self._udp_tasks: set[asyncio.Task[None]] = set()
        self._http: list[web.AppRunner] = []
        self._ready = False
        self.generation = 0  # bumped on every Service/EndpointSlice event
        # (query bytes after the ID, proto) -> (reply bytes after the ID, zone, qtype);
        # identical questions get identical answers until the data changes
        self._cache: dict[tuple[bytes, str], tuple[bytes, str, str]] = {}
        self._cache_generation = 0
        self._changed = asyncio.Event()

    def _bump(self, *_: Any) -> None:
        """Informer handler: answers are computed per query, so only note that data changed."""
        self.generation += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self, since: int, timeout: float) -> bool:
        """Wait until an event arrives after generation `since`; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.generation <= since:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await aio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    @property
    def client(self) -> Any:
        """The API client the server reads with (after `start`)."""
        return self._client

    @property
    def server_label(self) -> str:
        return f"dns://:{self.config.port}"

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, list, then listen; on failure everything started so far is stopped."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        from tinykube.client.informer import InformerFactory
        from tinykube.client.rest import Client

        if self.config.client is not None:
            self._client = self.config.client
        else:
            self._client = Client.from_kubeconfig(self.config.kubeconfig, user_agent="coredns")
            self._owns_client = True
        if self.config.ensure_service:
            await self._ensure_service()
        self._factory = InformerFactory(self._client)
        services = self._factory.informer("services")
        slices = self._factory.informer("endpointslices", "discovery.k8s.io")
        for name, fn in SERVICE_INDEXES.items():
            services.add_index(name, fn)
        for name, fn in SLICE_INDEXES.items():
            slices.add_index(name, fn)
        for informer in (services, slices):
            informer.add_handlers(self._bump, self._bump, self._bump)
        await self._start_http()
        await self._factory.start_all()
        self.resolver = Resolver(CacheView(services.cache, slices.cache), self.config.cluster_domain, self.config.ttl)
        await self._start_dns()
        self._ready = True

    async def _ensure_service(self) -> None:
        """Create kube-dns before the first list, so the first answers already include it."""
        from tinykube.api.errors import ApiError
        from tinykube.client.wait import retry_with_backoff
        from tinykube.dns.kubedns import ensure_kube_dns_service

        def ensure() -> Any:
            return ensure_kube_dns_service(self._client, self.config.service_ip,
                                           self.config.port or 53,
                                           self.config.metrics_port or 9153)

        try:
            # Started beside the API server (static pods): wait for it, as the informers
            # would (OSError includes ConnectionError).
            await retry_with_backoff(ensure, (OSError, asyncio.TimeoutError), "the API server",
                                     log)
        except ApiError as exc:  # e.g. the IP is outside this cluster's service range
            log.warning("cannot create the kube-dns Service: %s", exc)

    async def _start_dns(self) -> None:
        """UDP and TCP on one port number; with port 0, retry until both are free."""
        attempts = 20 if self.config.port == 0 else 1
        for attempt in range(attempts):
            try:
                await self._bind_dns(self.config.bind_address, self.config.port)
                return
            except OSError as exc:
                if self._udp is not None:
                    self._udp.close()
                    self._udp = None
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise

    async def _bind_dns(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UDPProtocol(self), local_addr=(host, port))
        self.port = self._udp.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._handle_tcp, host, self.port)
        self.tcp_port = self._tcp.sockets[0].getsockname()[1]

    async def _start_http(self) -> None:
        cfg = self.config
        apps = []
        if cfg.health_port is not None:
            apps.append(("health_port", cfg.health_port, "/health", lambda: True))
        if cfg.ready_port is not None:
            apps.append(("ready_port", cfg.ready_port, "/ready", lambda: self._ready))
        for attr, port, path, check in apps:
            app = web.Application()
            app.router.add_get(path, _check_handler(check))
            setattr(self, attr, await self._serve(app, port))
        if cfg.metrics_port is not None:
            app = web.Application()
            app.router.add_get("/metrics", self._serve_metrics)
            self.metrics_port = await self._serve(app, cfg.metrics_port)

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._http.append(runner)  # cleaned up by stop() even if binding fails
        await web.TCPSite(runner, self.config.http_bind_address, port).start()
        return runner.addresses[0][1]

    async def _serve_metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stop(self) -> None:
        self._ready = False
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for task in list(self._tcp_tasks | self._udp_tasks):
            task.cancel()
        await asyncio.gather(*self._tcp_tasks, *self._udp_tasks, return_exceptions=True)
        for runner in self._http:
            await runner.cleanup()
        self._http.clear()
        if self._factory is not None:
            await self._factory.stop_all()
        if self._owns_client and self._client is not None:
            await self._client.close()

    # -- queries -----------------------------------------------------------------------
    async def handle(self, data: bytes, proto: str) -> bytes | None:
        """One wire query to one wire response (None when it cannot be parsed at all)."""
        start = time.perf_counter()
        cached = self._cached(data, proto)
        if cached is not None:
            reply, zone_label, qtype_name = cached
            self._account(zone_label, proto, qtype_name, reply, time.perf_counter() - start)
            return data[:2] + reply
        try:
            request = DNSRecord.parse(data)
        except (DNSError, struct.error, IndexError, ValueError):
            return _formerr(data)
        if not request.questions or request.header.opcode != 0:
            reply = request.reply()
            reply.header.rcode = RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR
            return reply.pack()
        question = request.q
        qname, qtype = str(question.qname), question.qtype
        zone = self.resolver.zone_of(qname) if self.resolver else None
        reply_bytes: bytes
        qtype_name = str(QTYPE.get(qtype, str(qtype)))
        if zone is None:
            reply_bytes = await self._outside(request)
            zone_label = "."
        else:
            reply_bytes = self._answer(request, qname, qtype)
            zone_label = zone + "."
        self._account(zone_label, proto, qtype_name, reply_bytes, time.perf_counter() - start)
        if proto == "udp":
            reply_bytes = _truncate(request, reply_bytes)
        if zone is not None:
            self._remember(data, proto, reply_bytes, zone_label, qtype_name)
        return reply_bytes

    def _cached(self, data: bytes, proto: str) -> tuple[bytes, str, str] | None:
        if self._cache_generation != self.generation:
            self._cache.clear()
            self._cache_generation = self.generation
            return None
        return self._cache.get((bytes(data[2:]), proto))

    def _remember(self, data: bytes, proto: str, reply: bytes, zone: str, qtype: str) -> None:
        if self._cache_generation != self.generation:
            return  # the data changed while this answer was computed
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[(bytes(data[2:]), proto)] = (bytes(reply[2:]), zone, qtype)

    def _answer(self, request: DNSRecord, qname: str, qtype: int) -> bytes:
        assert self.resolver is not None
        answer = self.resolver.resolve(qname, qtype)
        reply = request.reply(ra=0, aa=1)
        if answer is not None:
            reply.header.rcode = answer.rcode
            for rr in answer.answers:
                reply.add_answer(rr)
            for rr in answer.authority:
                reply.add_auth(rr)
            for rr in answer.additional:
                reply.add_ar(rr)
        return reply.pack()

    async def _outside(self, request: DNSRecord) -> bytes:
        """Names outside the cluster domain: forward when configured, else REFUSED."""
        if self.config.forward:
            answer = await forward_query(request.pack(), self.config.forward, self.config.forward_timeout)
            if answer is not None:
                return answer
            reply = request.reply(ra=1, aa=0)
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        reply = request.reply(ra=0, aa=0)
        reply.header.rcode = RCODE.REFUSED
        return reply.pack()

    def _account(self, zone: str, proto: str, qtype: str, reply: bytes, seconds: float) -> None:
        server = self.server_label
        self.metrics.requests.labels(server, zone, "", proto, "1", qtype).inc()
        rcode = RCODE.get(reply[3] & 0x0F, "UNKNOWN") if len(reply) > 3 else "UNKNOWN"
        self.metrics.responses.labels(server, zone, "", str(rcode), "kubernetes" if zone != "." else "").inc()
        self.metrics.duration.labels(server, zone, "", qtype).observe(seconds)

    async def _handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tcp_tasks.add(task)
        try:
            while True:
                header = await reader.readexactly(2)
                data = await reader.readexactly(struct.unpack("!H", header)[0])
                response = await self.handle(data, "tcp")
                if response is None:
                    break
                writer.write(struct.pack("!H", len(response)) + response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection: the normal end of a TCP session
        finally:
            writer.close()
            self._tcp_tasks.discard(task)

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.create_task(self._reply_udp(data, addr))
        self._udp_tasks.add(task)
        task.add_done_callback(self._udp_tasks.discard)

    async def _reply_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        response = await self.handle(data, "udp")
        if response is not None and self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(response, addr)


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._on_datagram(data, addr)


def _check_handler(check: Any) -> Any:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(text="OK") if check() else web.Response(status=503, text="not ready")
    return handler


def _formerr(data: bytes) -> bytes | None:
    """FORMERR echoing the query id, when at least a header arrived."""
    if len(data) < 12:
        return None
    qid = data[:2]
    flags = struct.pack("!H", 0x8000 | RCODE.FORMERR)
    return qid + flags + b"\x00\x00" * 4


def _truncate(request: DNSRecord, reply: bytes) -> bytes:
    """Over-size UDP answers: set TC and drop the records, so the client retries on TCP."""
    limit = UDP_DEFAULT_SIZE
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            limit = max(UDP_DEFAULT_SIZE, rr.rclass)
    if len(reply) <= limit:
        return reply
    short = request.reply(ra=0, aa=1)
    short.header.tc = 1
    short.header.rcode = reply[3] & 0x0F
    return short.pack()
