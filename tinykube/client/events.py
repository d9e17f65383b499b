"""EventRecorder: core/v1 Events about objects, written off the caller's path.

``event()`` never blocks and never raises: it drops the Event into a bounded queue that one
owned background task drains, writing one Event at a time as client-go's broadcaster does
(its sink is called from a single goroutine). Repeats of an identical Event (same object,
type, reason, message and source, as upstream's EventCorrelator keys them) are not
re-created: the task PATCHes the existing Event's ``count`` and ``lastTimestamp``. When the
queue is full new Events are dropped with a warning, as client-go's broadcaster does.
``close()`` flushes.

With ``qps`` > 0 the writes go through a client-side token bucket (``burst`` tokens,
refilled at ``qps`` per second), as the kubelet's event client does with its
``eventRecordQPS``/``eventBurst``: past the burst, writes are delayed, never dropped, so a
burst of pods does not put its Events ahead of the pods' status writes at the API server;
repeats that queue up meanwhile are folded into one write. ``close()`` flushes what is
queued without waiting for tokens.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.client.rest import Client

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
QUEUE_SIZE = 1000
BATCH = 64  # distinct Events waiting to be written, beyond which they stay queued
MAX_TRACKED = 4096  # aggregation cache size (upstream's LRU holds 4096 too)

Object = dict[str, Any]
EventKey = tuple[str, ...]


class TokenBucket:
    """client-go's token-bucket rate limiter: ``burst`` tokens, refilled at ``qps`` per
    second; ``try_take()`` takes one if there is one, ``until_next()`` says how long until
    there is."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = float(qps)
        self.burst = max(1, int(burst))
        self.tokens = float(self.burst)
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.qps)
        self._stamp = now

    def try_take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def until_next(self) -> float:
        """Seconds until the next token (0 while one is left), as of the last refill."""
        return max(0.0, (1 - self.tokens) / self.qps)


@dataclass
class _Pending:
    key: EventKey
    event: Object
    repeats: int = 1


@dataclass
class _Written:
    namespace: str
    name: str
    count: int


def involved_object(obj: Object) -> Object:
    """The ObjectReference an Event points at."""
    ref: Object = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                   "name": meta.name(obj), "uid": meta.uid(obj)}
    if meta.namespace(obj):
        ref["namespace"] = meta.namespace(obj)
    if meta.resource_version(obj):
        ref["resourceVersion"] = meta.resource_version(obj)
    return ref


def event_key(event: Object) -> EventKey:
    """What makes two Events "the same" for aggregation (upstream's getEventKey)."""
    ref = event["involvedObject"]
    src = event["source"]
    return (src.get("component", ""), src.get("host", ""), ref.get("kind", ""),
            ref.get("namespace", ""), ref.get("name", ""), ref.get("fieldPath", ""),
            ref.get("uid", ""), ref.get("apiVersion", ""), event["type"], event["reason"],
            event["message"])


def build_event(obj: Object, type_: str, reason: str, message: str, component: str,
                host: str) -> Object:
    """A new core/v1 Event; cluster-scoped objects get their Events in ``default``."""
    ref = involved_object(obj)
    stamp = meta.now()
    source: Object = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{ref['name']}.{time.time_ns():x}",
                     "namespace": ref.get("namespace") or "default"},
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host,
    }


class EventRecorder:
    """Record Events for one component; call ``close()`` to flush and stop."""

    def __init__(self, client: Client, component: str, host: str | None = None,
                 queue_size: int = QUEUE_SIZE, *, qps: float = 0.0, burst: int = 0) -> None:
        self.events = client.resource("events")
        self.component = component
        self.host = host if host is not None else socket.gethostname()
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue(queue_size)
        self._written: dict[EventKey, _Written] = {}
        self._task: asyncio.Task[None] | None = None
        self._limiter = TokenBucket(qps, burst or int(qps) or 1) if qps > 0 else None
        self._flushing = False
        self.dropped = 0

    def event(self, obj: Object, type: str, reason: str, message: str) -> None:  # noqa: A002
        """Queue an Event about ``obj`` (type Normal or Warning); never blocks."""
        if type not in (NORMAL, WARNING):
            raise ValueError(f"event type must be Normal or Warning, not {type!r}")
        ev = build_event(obj, type, reason, message, self.component, self.host)
        try:
            self._queue.put_nowait(_Pending(event_key(ev), ev))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full, dropping event %s %s: %s", reason,
                        meta.key(obj), message)
            return
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name=f"events-{self.component}")

    async def close(self) -> None:
        """Write every queued Event, then stop the writer."""
        if self._task is None:
            return
        self._flushing = True
        try:
            await self._queue.put(None)
            await self._task
        finally:
            self._task = None
            self._flushing = False

    async def _drain(self) -> None:
        """Write the queued Events one at a time, as client-go's broadcaster records to its
        sink from one goroutine: a burst's Events trail the requests that matter to it (a
        pod's status) instead of racing them. Repeats queued meanwhile join the write still
        waiting; with a rate limit each write waits for a token (not while flushing)."""
        waiting: dict[EventKey, _Pending] = {}
        stopping = False
        while True:
            if not waiting and not stopping:
                item = await self._queue.get()
                if item is None:
                    stopping = True
                else:
                    self._fold(waiting, item)
            stopping = self._take_queued(waiting) or stopping
            if not waiting:
                if stopping:
                    return
                continue
            if self._limiter is not None and not self._flushing and not self._limiter.try_take():
                await asyncio.sleep(self._limiter.until_next())
                continue
            await self._write(waiting.pop(next(iter(waiting))))

    def _take_queued(self, waiting: dict[EventKey, _Pending]) -> bool:
        """Fold what is queued into ``waiting`` (up to ``BATCH`` distinct Events); True
        once the stop marker was taken."""
        while not self._queue.empty() and len(waiting) < BATCH:
            item = self._queue.get_nowait()
            if item is None:
                return True
            self._fold(waiting, item)
        return False

    @staticmethod
    def _fold(waiting: dict[EventKey, _Pending], item: _Pending) -> None:
        """A repeat joins the write of its Event still waiting; anything else waits in turn."""
        pending = waiting.get(item.key)
        if pending is None:
            waiting[item.key] = item
        else:
            pending.repeats += item.repeats
            pending.event["lastTimestamp"] = item.event["lastTimestamp"]

    async def _write(self, pending: _Pending) -> None:
        try:
            written = self._written.get(pending.key)
            if written is not None:
                try:
                    await self._bump(written, pending)
                    return
                except ApiError as exc:
                    if exc.code != 404:  # the old Event expired: create a fresh one
                        raise
            pending.event["count"] = pending.repeats
            created = await self.events.create(pending.event,
                                               namespace=pending.event["metadata"]["namespace"])
            self._remember(pending.key, _Written(meta.namespace(created), meta.name(created),
                                                 pending.repeats))
        except (ApiError, ConnectionError, asyncio.TimeoutError) as exc:
            log.warning("could not write event %s (%s): %s", pending.event["reason"],
                        pending.event["message"], exc)

    async def _bump(self, written: _Written, pending: _Pending) -> None:
        count = written.count + pending.repeats
        await self.events.patch(
            written.name, {"count": count, "lastTimestamp": pending.event["lastTimestamp"]},
            namespace=written.namespace, patch_type="merge")
        written.count = count

    def _remember(self, key: EventKey, written: _Written) -> None:
        if len(self._written) >= MAX_TRACKED:
            self._written.pop(next(iter(self._written)))
        self._written[key] = written
