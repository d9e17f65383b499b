"""The etcd store: real etcd (v3 API over gRPC) for HA and multi-machine clusters.

Each write is one etcd transaction, as kube-apiserver's etcd3 storage issues them: a create
compares ``create_revision == 0`` and puts; an update or delete compares ``mod_revision``
with the expected one (or ``create_revision > 0`` when unconditional) and, on failure, reads
the key back in the same transaction so the caller gets the current value without a second
round trip. Values are the caller's bytes unchanged, so ``etcdctl get --prefix /registry/``
shows the objects' JSON.

The client is gRPC (``grpc.aio`` with the etcd v3 protobuf stubs that aetcd ships), chosen
over etcd's JSON gateway by measurement: about half the put latency, 1.7x the concurrent put
throughput and 6x faster large ranges (no base64/JSON round trip). Calls carry short
deadlines and reconnect back-off is capped at a second, so a stopped etcd fails fast with
``UnavailableError`` and the store recovers as soon as etcd answers again.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import parse_qs, urlsplit

import grpc
from aetcd import rpc

from tinykube.storage.etcdwatch import WatchMux, from_pb, prefix_range_end
from tinykube.storage.store import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    MAX_VALUE_BYTES,
    ListResult,
    StoreError,
    UnavailableError,
    ValueTooLargeError,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = 3.0
#: kube-apiserver's lease manager reuses a lease granted within 5% of its TTL (max 60 s).
LEASE_REUSE_FRACTION = 0.05
LEASE_REUSE_MAX_SECONDS = 60.0

_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 3_000),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
]


def grpc_target(endpoints: list[str]) -> str:
    """One gRPC target over every endpoint (gRPC fails over between addresses)."""
    hosts = [ep.rsplit(":", 1)[0].strip("[]") for ep in endpoints]
    try:
        for host in hosts:
            ipaddress.ip_address(host)
    except ValueError:
        if len(endpoints) == 1:
            return f"dns:///{endpoints[0]}"
        raise ValueError(f"several etcd endpoints must be IP addresses: {endpoints}") from None
    return "ipv4:" + ",".join(endpoints) if ":" not in hosts[0] else "ipv6:" + ",".join(endpoints)


@dataclass(frozen=True, slots=True)
class EtcdTLSFiles:
    """PEM files for TLS to etcd: the CA to trust and an optional client certificate."""

    cacert: str | None
    cert: str | None
    key: str | None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | None) -> bytes | None:
            if path is None:
                return None
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as exc:
                raise UnavailableError(f"etcd TLS: cannot read {path}: {exc}") from exc

        if (self.cert is None) != (self.key is None):
            raise ValueError("etcd TLS needs both cert and key (or neither)")
        return grpc.ssl_channel_credentials(
            root_certificates=read(self.cacert), private_key=read(self.key),
            certificate_chain=read(self.cert))


@dataclass(slots=True)
class _Lease:
    id: int
    granted_at: float


class EtcdStore:
    """A ``Store`` on a real etcd cluster (see the module docstring)."""

    def __init__(self, endpoints: list[str], timeout: float = DEFAULT_TIMEOUT,
                 tls: EtcdTLSFiles | None = None):
        if not endpoints:
            raise ValueError("etcd store needs at least one endpoint")
        self.endpoints = endpoints
        self.timeout = timeout
        self.tls = tls
        self._channel: grpc.aio.Channel | None = None
        self._kv: Any = None
        self._lease: Any = None
        self._watch: WatchMux | None = None
        self._leases: dict[int, _Lease] = {}
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> EtcdStore:
        """``etcd://HOST:PORT[,HOST:PORT...][?timeout=S][&cacert=F&cert=F&key=F]``.

        ``cacert``/``cert``/``key`` are kube-apiserver's ``--etcd-cafile``,
        ``--etcd-certfile`` and ``--etcd-keyfile``: with them the store speaks TLS.
        """
        parts = urlsplit(url)
        if parts.scheme != "etcd" or not parts.netloc:
            raise ValueError(f"not an etcd store URL: {url!r} (want etcd://HOST:PORT)")
        endpoints = [ep for ep in parts.netloc.split(",") if ep]
        for ep in endpoints:
            if ":" not in ep:
                raise ValueError(f"etcd endpoint {ep!r} needs a port")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            timeout = float(query.get("timeout", DEFAULT_TIMEOUT))
        except ValueError:
            raise ValueError(f"etcd store URL: timeout must be a number of seconds: {url!r}") from None
        tls = None
        if any(k in query for k in ("cacert", "cert", "key")):
            tls = EtcdTLSFiles(query.get("cacert"), query.get("cert"), query.get("key"))
        return cls(endpoints, timeout=timeout, tls=tls)

    # ----- plumbing ---------------------------------------------------------------------

    def _stubs(self) -> tuple[Any, Any]:
        if self._closed:
            raise UnavailableError("store is closed")
        if self._channel is None:
            target = grpc_target(self.endpoints)
            if self.tls is None:
                self._channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
            else:
                self._channel = grpc.aio.secure_channel(
                    target, self.tls.credentials(), options=_CHANNEL_OPTIONS)
            self._kv = rpc.KVStub(self._channel)
            self._lease = rpc.LeaseStub(self._channel)
            self._watch = WatchMux(rpc.WatchStub(self._channel), self._describe)
        return self._kv, self._lease

    def _describe(self) -> str:
        return "etcd at " + ",".join(self.endpoints)

    async def _call(self, fn: Callable[..., Awaitable[T]], request: Any) -> T:
        """One unary call with a deadline; gRPC failures become store errors.

        With several endpoints a read that hit a member that just went away is retried
        once, waiting (within the deadline) for gRPC to connect to another member, as
        etcd's own client does. Writes are never retried: their outcome is unknown.
        """
        try:
            return await fn(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            if not (exc.code() == grpc.StatusCode.UNAVAILABLE and len(self.endpoints) > 1
                    and isinstance(request, rpc.RangeRequest)):
                raise await self._translate(exc, request) from exc
        try:
            return await fn(request, timeout=self.timeout, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise await self._translate(exc, request) from exc

    async def _translate(self, exc: grpc.aio.AioRpcError, request: Any) -> StoreError:
        details = exc.details() or ""
        code = exc.code()
        if code == grpc.StatusCode.OUT_OF_RANGE or "mvcc" in details:
            requested = int(getattr(request, "revision", 0))
            if "compacted" in details:
                return CompactedError(requested, await self._compact_revision_hint())
            if "future revision" in details:
                return FutureRevisionError(requested, await self._revision_or(requested - 1))
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.CANCELLED):
            return UnavailableError(f"{self._describe()} unavailable: {details or code.name}")
        return UnavailableError(f"{self._describe()} failed: {code.name}: {details}")

    async def _compact_revision_hint(self) -> int:
        """etcd's compacted revision, learnt from a watch that starts at revision 1."""
        assert self._watch is not None
        try:
            return await self._watch.compact_revision(self.timeout)
        except StoreError:
            return 0

    async def _revision_or(self, fallback: int) -> int:
        try:
            return await self.current_revision()
        except StoreError:
            return fallback

    # ----- reads ------------------------------------------------------------------------

    async def current_revision(self) -> int:
        kv, _ = self._stubs()
        resp = await self._call(kv.Range, rpc.RangeRequest(key=b"\0", keys_only=True))
        return int(resp.header.revision)

    async def get(self, key: str, revision: int | None = None) -> tuple[int, KeyValue | None]:
        kv, _ = self._stubs()
        resp = await self._call(kv.Range, rpc.RangeRequest(key=key.encode(), revision=revision or 0))
        found = from_pb(resp.kvs[0]) if resp.kvs else None
        return (revision or int(resp.header.revision)), found

    async def list(
        self,
        prefix: str,
        revision: int | None = None,
        limit: int = 0,
        start_after: str | None = None,
    ) -> ListResult:
        if limit < 0:
            raise ValueError("limit must not be negative")
        kv, _ = self._stubs()
        start = prefix.encode() if start_after is None else start_after.encode() + b"\0"
        start = max(start, prefix.encode()) or b"\0"
        request = rpc.RangeRequest(
            key=start, range_end=prefix_range_end(prefix.encode()), limit=limit,
            revision=revision or 0,
        )
        resp = await self._call(kv.Range, request)
        items = [from_pb(item) for item in resp.kvs]
        return ListResult(items, revision or int(resp.header.revision), bool(resp.more))

    async def count(self, prefix: str) -> tuple[int, int]:
        kv, _ = self._stubs()
        request = rpc.RangeRequest(
            key=prefix.encode() or b"\0", range_end=prefix_range_end(prefix.encode()),
            count_only=True,
        )
        resp = await self._call(kv.Range, request)
        return int(resp.header.revision), int(resp.count)

    # ----- writes -----------------------------------------------------------------------

    async def _lease_for(self, ttl: int) -> int:
        """A lease of at least ``ttl`` seconds, shared by writes close in time (as upstream)."""
        if ttl <= 0:
            return 0
        _, lease = self._stubs()
        now = time.monotonic()
        window = min(ttl * LEASE_REUSE_FRACTION, LEASE_REUSE_MAX_SECONDS)
        cached = self._leases.get(ttl)
        if cached is not None and now - cached.granted_at < window:
            return cached.id
        resp = await self._call(lease.LeaseGrant, rpc.LeaseGrantRequest(TTL=ttl + int(window)))
        self._leases[ttl] = _Lease(int(resp.ID), now)
        return int(resp.ID)

    @staticmethod
    def _check_size(key: str, value: bytes) -> None:
        """Refuse what etcd would refuse, before granting a lease or sending anything."""
        if len(value) > MAX_VALUE_BYTES:
            raise ValueTooLargeError(key, len(value))

    async def create(self, key: str, value: bytes, lease_ttl: int = 0) -> int:
        self._check_size(key, value)
        kv, _ = self._stubs()
        k = key.encode()
        lease = await self._lease_for(lease_ttl)
        txn = rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL,
                                 create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, lease=lease))],
        )
        resp = await self._call(kv.Txn, txn)
        if not resp.succeeded:
            raise KeyExistsError(key)
        return int(resp.header.revision)

    @staticmethod
    def _guard(k: bytes, expected: int) -> Any:
        """The compare of a conditional write: this mod revision, or "the key exists"."""
        if expected:
            return rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL,
                               mod_revision=expected)
        return rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.GREATER,
                           create_revision=0)

    @staticmethod
    def _failure(key: str, resp: Any) -> StoreError:
        """Why a guarded write failed, from the read in its failure branch."""
        kvs = resp.responses[0].response_range.kvs if resp.responses else []
        if not kvs:
            return KeyNotFoundError(key)
        return ConflictError(key, from_pb(kvs[0]))

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int, lease_ttl: int = 0
    ) -> int:
        self._check_size(key, value)
        kv, _ = self._stubs()
        k = key.encode()
        lease = await self._lease_for(lease_ttl)
        txn = rpc.TxnRequest(
            compare=[self._guard(k, expected_mod_revision)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, lease=lease))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        resp = await self._call(kv.Txn, txn)
        if not resp.succeeded:
            raise self._failure(key, resp)
        return int(resp.header.revision)

    async def delete(self, key: str, expected_mod_revision: int = 0) -> tuple[int, KeyValue]:
        kv, _ = self._stubs()
        k = key.encode()
        txn = rpc.TxnRequest(
            compare=[self._guard(k, expected_mod_revision)],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k,
                                                                              prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        resp = await self._call(kv.Txn, txn)
        if not resp.succeeded:
            raise self._failure(key, resp)
        prev = resp.responses[0].response_delete_range.prev_kvs
        if not prev:  # deleted by someone else between compare and apply cannot happen in a txn
            raise KeyNotFoundError(key)
        return int(resp.header.revision), from_pb(prev[0])

    async def compact(self, revision: int, *, physical: bool = False) -> None:
        """Compact as kube-apiserver does; ``physical`` waits until etcd freed the space."""
        kv, _ = self._stubs()
        await self._call(kv.Compact, rpc.CompactionRequest(revision=revision, physical=physical))

    # ----- watch ------------------------------------------------------------------------

    def watch(self, prefix: str, after_revision: int) -> Any:
        self._stubs()
        assert self._watch is not None
        return self._watch.watch(prefix, after_revision, self.timeout)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watch is not None:
            await self._watch.close()
        if self._channel is not None:
            await self._channel.close()
