"""etcd watches: every watch of one store multiplexed on a single gRPC Watch stream.

etcd's client does the same: one bidirectional stream carries many watchers, each named by
a ``watch_id`` the client picks. A reader task owned by ``WatchMux`` moves each response
into that watcher's bounded buffer (``watchhub.Subscription``), so a slow watcher never
stalls the stream, the other watchers or any writer; when its buffer overflows it is
closed with ``WatchOverflowError`` and its etcd watch cancelled. If the stream breaks (etcd
stopped), every watcher on it fails with ``UnavailableError``; the next watch opens a new
stream once etcd answers again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Callable

import grpc
from aetcd import rpc

from tinykube import aio
from tinykube.storage.store import (
    CompactedError,
    Event,
    KeyValue,
    StoreError,
    UnavailableError,
)
from tinykube.storage.watchhub import Hub, Subscription

log = logging.getLogger(__name__)

_DELETE = 1  # mvccpb.Event.EventType.DELETE


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's range end for "every key starting with prefix" (``\\0`` means no bound)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def from_pb(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), bytes(kv.value), int(kv.create_revision),
                    int(kv.mod_revision), int(kv.lease))


def event_from_pb(ev: Any) -> Event:
    prev = from_pb(ev.prev_kv) if ev.HasField("prev_kv") else None
    return Event("DELETE" if ev.type == _DELETE else "PUT", from_pb(ev.kv), prev)


class EtcdWatch:
    """One watcher: created on etcd at the first ``__anext__``, then fed by the mux."""

    def __init__(self, mux: WatchMux, prefix: str, after_revision: int, timeout: float):
        self.prefix = prefix
        self.after_revision = after_revision
        self.watch_id = 0
        self.sub: Subscription = mux.hub.subscribe(prefix)
        self.created = asyncio.Event()
        self._mux = mux
        self._timeout = timeout
        self._started = False
        self._closed = False

    def __aiter__(self) -> EtcdWatch:
        return self

    async def __anext__(self) -> list[Event]:
        if not self._started:
            self._started = True
            await self._mux.start(self, self._timeout)
        batch = await self.sub.get()
        if batch is None:
            raise StopAsyncIteration
        return batch

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.sub.close()
        await self._mux.cancel(self)


class WatchMux:
    """The single Watch stream of a store and the watchers on it."""

    def __init__(self, stub: Any, describe: Callable[[], str]):
        self.hub = Hub()
        self._stub = stub
        self._describe = describe
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._watchers: dict[int, EtcdWatch] = {}
        self._ids = itertools.count(1)
        self._send_lock = asyncio.Lock()
        self._probes: dict[int, asyncio.Future[int]] = {}
        self._cancels: set[asyncio.Task[None]] = set()

    def watch(self, prefix: str, after_revision: int, timeout: float) -> EtcdWatch:
        return EtcdWatch(self, prefix, after_revision, timeout)

    async def _send(self, request: Any) -> None:
        async with self._send_lock:
            if self._call is None or self._call.done():
                self._open_stream()
            try:
                await self._call.write(request)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                raise UnavailableError(f"{self._describe()} unavailable: watch stream: {exc}") from exc

    def _open_stream(self) -> None:
        call = self._stub.Watch()
        self._call = call
        self._reader = asyncio.create_task(self._read(call), name="etcd-watch-reader")

    @staticmethod
    def _create_request(watch_id: int, key: bytes, start_revision: int) -> Any:
        return rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=key or b"\0", range_end=prefix_range_end(key), start_revision=start_revision,
            prev_kv=True, watch_id=watch_id,
        ))

    async def start(self, watch: EtcdWatch, timeout: float) -> None:
        """Create the watch on etcd and wait for etcd to confirm it."""
        watch.watch_id = next(self._ids)
        self._watchers[watch.watch_id] = watch
        request = self._create_request(
            watch.watch_id, watch.prefix.encode(), watch.after_revision + 1
        )
        try:
            await aio.wait_for(self._send(request), timeout)
            await aio.wait_for(watch.created.wait(), timeout)
        except asyncio.TimeoutError:
            self._watchers.pop(watch.watch_id, None)
            watch.sub.fail(UnavailableError(f"{self._describe()}: watch was not created in time"))
        except UnavailableError as exc:
            self._watchers.pop(watch.watch_id, None)
            watch.sub.fail(exc)

    async def cancel(self, watch: EtcdWatch) -> None:
        if self._watchers.pop(watch.watch_id, None) is None:
            return
        if self._call is None or self._call.done():
            return
        await self._send_cancel(watch.watch_id)

    async def compact_revision(self, timeout: float) -> int:
        """etcd's compacted revision: a watch from revision 1 is cancelled with it."""
        probe_id = next(self._ids)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._probes[probe_id] = fut
        try:
            await self._send(self._create_request(probe_id, b"\0", 1))
            return await aio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            await self._send(rpc.WatchRequest(
                cancel_request=rpc.WatchCancelRequest(watch_id=probe_id)))
            return 0
        finally:
            self._probes.pop(probe_id, None)

    async def _read(self, call: Any) -> None:
        error: StoreError
        try:
            async for resp in call:
                self._dispatch(resp)
            error = UnavailableError(f"{self._describe()}: watch stream ended")
        except grpc.aio.AioRpcError as exc:
            error = UnavailableError(f"{self._describe()} unavailable: {exc.details() or exc.code().name}")
        except asyncio.CancelledError:
            self._fail_stream(call, UnavailableError("store is closed"))
            raise
        self._fail_stream(call, error)

    def _fail_stream(self, call: Any, error: StoreError) -> None:
        if self._call is call:
            self._call = None
        watchers, self._watchers = self._watchers, {}
        for watch in watchers.values():
            watch.sub.fail(error)
        for fut in self._probes.values():
            if not fut.done():
                fut.set_exception(error)

    def _dispatch(self, resp: Any) -> None:
        probe = self._probes.get(resp.watch_id)
        if probe is not None:
            if resp.canceled and not probe.done():
                probe.set_result(int(resp.compact_revision))
            return
        watch = self._watchers.get(resp.watch_id)
        if watch is None:
            return
        if resp.created:
            watch.created.set()
        if resp.canceled:
            self._watchers.pop(resp.watch_id, None)
            watch.created.set()
            if resp.compact_revision:
                watch.sub.fail(CompactedError(watch.after_revision, int(resp.compact_revision)))
            else:
                watch.sub.fail(UnavailableError(
                    f"{self._describe()} cancelled the watch: {resp.cancel_reason}"
                ))
            return
        if resp.events:
            watch.sub.offer([event_from_pb(ev) for ev in resp.events])
            if not watch.sub.active:
                self._watchers.pop(resp.watch_id, None)
                self._spawn_cancel(resp.watch_id)

    def _spawn_cancel(self, watch_id: int) -> None:
        """Cancel an overflowed watch on etcd from a task the mux owns (not from the reader)."""
        task = asyncio.create_task(self._send_cancel(watch_id), name=f"etcd-watch-cancel-{watch_id}")
        self._cancels.add(task)
        task.add_done_callback(self._cancels.discard)

    async def _send_cancel(self, watch_id: int) -> None:
        try:
            await self._send(rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=watch_id)))
        except UnavailableError as exc:
            log.debug("etcd watch %d: cancel not sent: %s", watch_id, exc)

    async def close(self) -> None:
        self.hub.fail_all(UnavailableError("store is closed"))
        for task in list(self._cancels):
            task.cancel()
        if self._cancels:
            await asyncio.gather(*self._cancels, return_exceptions=True)
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except asyncio.CancelledError:
                pass
