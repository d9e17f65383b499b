"""Bitmap allocators for Service ClusterIPs and NodePorts, persisted in the store.

As kube-apiserver does, each range is one object in the store (``/registry/ranges/
serviceips`` and ``/registry/ranges/servicenodeports``) whose ``data`` is a base64
bitmap; every allocation is a compare-and-swap on that key, so several API servers over
one store never hand out the same address.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import random

import orjson

from tinykube.storage.store import ConflictError, KeyExistsError, Store

IP_RANGE_KEY = "/registry/ranges/serviceips"
PORT_RANGE_KEY = "/registry/ranges/servicenodeports"
MAX_CAS_ATTEMPTS = 50


class RangeFull(Exception):
    """No free item remains in the range."""


class AlreadyAllocated(Exception):
    """The requested item is taken."""


class NotInRange(Exception):
    """The requested item is outside the range."""


class BitmapAllocator:
    """Allocates integers ``0 .. size-1`` with the bitmap stored under ``key``."""

    def __init__(self, store: Store, key: str, size: int, range_text: str):
        self.store = store
        self.key = key
        self.size = size
        self.range_text = range_text
        self._lock = asyncio.Lock()

    async def _read(self) -> tuple[bytearray, int]:
        _, kv = await self.store.get(self.key)
        if kv is None:
            return bytearray((self.size + 7) // 8), 0
        doc = orjson.loads(kv.value)
        data = bytearray(base64.b64decode(doc.get("data") or ""))
        data.extend(b"\0" * max(0, (self.size + 7) // 8 - len(data)))
        return data, kv.mod_revision

    async def _write(self, data: bytearray, revision: int) -> None:
        value = orjson.dumps({"kind": "RangeAllocation", "apiVersion": "v1",
                              "metadata": {"name": self.key.rsplit("/", 1)[-1]},
                              "range": self.range_text,
                              "data": base64.b64encode(bytes(data)).decode()})
        if revision == 0:
            await self.store.create(self.key, value)
        else:
            await self.store.update(self.key, value, revision)

    @staticmethod
    def _taken(data: bytearray, index: int) -> bool:
        return bool(data[index >> 3] & (1 << (index & 7)))

    async def _mutate(self, choose, dry_run: bool) -> int:
        async with self._lock:
            for _ in range(MAX_CAS_ATTEMPTS):
                data, revision = await self._read()
                index = choose(data)
                if dry_run:
                    return index
                data[index >> 3] |= 1 << (index & 7)
                try:
                    await self._write(data, revision)
                    return index
                except (ConflictError, KeyExistsError):
                    continue
            raise RangeFull("could not update the allocation bitmap: too much contention")

    async def allocate_next(self, reserved: int = 0, dry_run: bool = False) -> int:
        """A free index (random, as upstream), skipping the first ``reserved``."""

        def choose(data: bytearray) -> int:
            start = random.randrange(reserved, self.size) if self.size > reserved else reserved
            for offset in range(self.size - reserved):
                index = reserved + (start - reserved + offset) % (self.size - reserved)
                if not self._taken(data, index):
                    return index
            raise RangeFull()

        return await self._mutate(choose, dry_run)

    async def allocate(self, index: int, dry_run: bool = False) -> None:
        if not 0 <= index < self.size:
            raise NotInRange()

        def choose(data: bytearray) -> int:
            if self._taken(data, index):
                raise AlreadyAllocated()
            return index

        await self._mutate(choose, dry_run)

    async def release(self, index: int) -> None:
        if not 0 <= index < self.size:
            return
        async with self._lock:
            for _ in range(MAX_CAS_ATTEMPTS):
                data, revision = await self._read()
                if revision == 0 or not self._taken(data, index):
                    return
                data[index >> 3] &= ~(1 << (index & 7)) & 0xFF
                try:
                    await self._write(data, revision)
                    return
                except ConflictError:
                    continue


class ClusterIPAllocator:
    """Service ClusterIPs from ``--service-cluster-ip-range`` (network address excluded)."""

    def __init__(self, store: Store, cidr: str):
        self.network = ipaddress.ip_network(cidr, strict=False)
        # Index 0 is the first usable address (network + 1); the broadcast is excluded.
        size = max(self.network.num_addresses - 2, 1)
        self.bitmap = BitmapAllocator(store, IP_RANGE_KEY, size, str(self.network))

    def address_of(self, index: int) -> str:
        return str(self.network.network_address + 1 + index)

    def index_of(self, address: str) -> int:
        ip = ipaddress.ip_address(address)
        if ip not in self.network:
            raise NotInRange()
        return int(ip) - int(self.network.network_address) - 1

    async def allocate_next(self, dry_run: bool = False) -> str:
        # The first address is the kubernetes Service's; bootstrap takes it explicitly.
        return self.address_of(await self.bitmap.allocate_next(reserved=1, dry_run=dry_run))

    async def allocate(self, address: str, dry_run: bool = False) -> None:
        await self.bitmap.allocate(self.index_of(address), dry_run)

    async def release(self, address: str) -> None:
        try:
            await self.bitmap.release(self.index_of(address))
        except (NotInRange, ValueError):
            return


class NodePortAllocator:
    """NodePorts from ``--service-node-port-range`` (default 30000-32767)."""

    def __init__(self, store: Store, port_range: str):
        low, _, high = port_range.partition("-")
        self.base = int(low)
        self.last = int(high or low)
        self.bitmap = BitmapAllocator(store, PORT_RANGE_KEY, self.last - self.base + 1,
                                      f"{self.base}-{self.last}")

    async def allocate_next(self, dry_run: bool = False) -> int:
        return self.base + await self.bitmap.allocate_next(dry_run=dry_run)

    async def allocate(self, port: int, dry_run: bool = False) -> None:
        await self.bitmap.allocate(port - self.base, dry_run)

    async def release(self, port: int) -> None:
        await self.bitmap.release(port - self.base)
