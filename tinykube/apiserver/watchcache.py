"""The watch cache: current objects and recent changes of every resource, in memory.

kube-apiserver serves lists and watches from a cache fed by etcd watches instead of
asking etcd each time. tinykube does the same with ONE store watch on the whole keyspace:
every committed change passes through it in revision order, so the cache knows exactly
which store revision it reflects (``revision``), and a consistent read only has to wait
until the cache has caught up with the store's current revision.

Each object is decoded once and serialized once (with its ``resourceVersion``) when its
change arrives; lists concatenate those bytes and every watcher of a change writes the
same event line. Watchers filter with their own selectors; a watcher that falls behind
by more than its buffer is closed (its client re-watches), never slowing the others.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

import orjson

from tinykube import aio
from tinykube.api.kinds import RESOURCES, ResourceInfo
from tinykube.storage.store import CompactedError, Event, Store, StoreError

log = logging.getLogger(__name__)

REGISTRY_PREFIX = "/registry/"
WATCH_PREFIX = ""
LIST_PAGE = 5000
WATCHER_BUFFER = 10_000
RESTART_DELAY_SECONDS = 0.2


def decode(value: bytes, revision: int) -> dict:
    """An object from its stored bytes, with ``resourceVersion`` set from the revision."""
    obj = orjson.loads(value)
    md = obj.get("metadata")
    if not isinstance(md, dict):
        md = obj["metadata"] = {}
    md["resourceVersion"] = str(revision)
    return obj


@dataclass(slots=True)
class CachedObject:
    """An object as clients see it: the dict (never mutated) and its JSON bytes."""

    obj: dict
    raw: bytes
    revision: int

    @classmethod
    def of(cls, obj: dict, revision: int) -> "CachedObject":
        return cls(obj, orjson.dumps(obj), revision)


@dataclass(slots=True)
class CacheEvent:
    """One change of one object, with its event lines serialized on first use."""

    type: str  # ADDED | MODIFIED | DELETED
    key: str
    namespace: str
    revision: int
    current: CachedObject  # for DELETED: the last state, with the deletion's revision
    prev: dict | None
    _prev_as_deleted: bytes | None = None
    _lines: dict[str, bytes] = field(default_factory=dict)

    def line(self, event_type: str) -> bytes:
        """``{"type": ..., "object": ...}\\n`` for this change, seen as ``event_type``."""
        cached = self._lines.get(event_type)
        if cached is None:
            raw = self.current.raw
            if event_type == "DELETED" and self.type == "MODIFIED":
                raw = self.prev_deleted_raw()
            cached = b'{"type":"' + event_type.encode() + b'","object":' + raw + b"}\n"
            self._lines[event_type] = cached
        return cached

    def prev_deleted_raw(self) -> bytes:
        """The previous state with this change's revision: what a watcher that no longer
        matches sees as DELETED (kube-apiserver's cacheWatcher does the same)."""
        if self._prev_as_deleted is None:
            prev = dict(self.prev or {})
            prev["metadata"] = {**(prev.get("metadata") or {}),
                                "resourceVersion": str(self.revision)}
            self._prev_as_deleted = orjson.dumps(prev)
        return self._prev_as_deleted


class WatcherClosed(Exception):
    """The watcher's buffer overflowed or the cache stopped."""


Filter = Callable[[dict], bool]


class Watcher:
    """One client watch: the events it still has to send, filtered by its selectors."""

    def __init__(self, cache: "ResourceCache", namespace: str, matches: Filter | None,
                 buffer: int = WATCHER_BUFFER, trigger: str | None = None):
        self.cache = cache
        self.namespace = namespace
        self.matches = matches
        # The exact value this watcher's selector requires of the resource's trigger field
        # (pods: spec.nodeName), so that events of other values never reach it.
        self.trigger = trigger
        self.pending: deque[bytes] = deque()
        self.buffer = buffer
        self.closed = False
        self._wakeup = asyncio.Event()

    def _passes(self, obj: dict | None) -> bool:
        return obj is not None and (self.matches is None or self.matches(obj))

    def offer(self, event: CacheEvent) -> None:
        """Queue the event as this watcher sees it (selector transitions included)."""
        if self.closed or (self.namespace and event.namespace != self.namespace):
            return
        if event.type == "ADDED":
            line = event.line("ADDED") if self._passes(event.current.obj) else None
        elif event.type == "DELETED":
            line = event.line("DELETED") if self._passes(event.current.obj) else None
        else:
            now, before = self._passes(event.current.obj), self._passes(event.prev)
            if now and before:
                line = event.line("MODIFIED")
            elif now:
                line = event.line("ADDED")
            elif before:
                line = event.line("DELETED")
            else:
                line = None
        if line is None:
            return
        if len(self.pending) >= self.buffer:
            self.close()
            return
        self.pending.append(line)
        self._wakeup.set()

    def preload(self, lines: list[bytes]) -> None:
        """Initial events, queued ahead of everything and exempt from the buffer limit."""
        if lines:
            self.pending.extendleft(reversed(lines))
            self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()
        self.cache.remove_watcher(self)

    async def next_lines(self, timeout: float | None) -> list[bytes]:
        """The queued lines (waiting up to ``timeout``); [] on timeout.

        Raises WatcherClosed once the watcher was closed and everything was taken.
        """
        if not self.pending and not self.closed:
            self._wakeup.clear()
            try:
                await aio.wait_for(self._wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                return []
        if not self.pending and self.closed:
            raise WatcherClosed()
        lines = list(self.pending)
        self.pending.clear()
        return lines


def _pod_node_name(obj: dict) -> str:
    return (obj.get("spec") or {}).get("nodeName") or ""


# resource -> (selector field, value getter): upstream's IndexerFuncs for watch triggers.
TRIGGER_SELECTORS: dict[str, str] = {"pods": "spec.nodeName"}
TRIGGER_FIELDS: dict[str, Callable[[dict], str]] = {"pods": _pod_node_name}


class ResourceCache:
    """Current objects of one storage prefix and its recent events."""

    def __init__(self, info: ResourceInfo, history: int):
        self.info = info
        self.prefix = info.storage_prefix()
        self.objects: dict[str, CachedObject] = {}
        self.by_namespace: dict[str, dict[str, CachedObject]] = {}
        self.events: deque[CacheEvent] = deque()
        self.history = history
        # Every change with a revision above this is in ``events``.
        self.floor = 0
        self.watchers: set[Watcher] = set()
        # kube-apiserver's indexed triggers: watchers keyed by the value they select on.
        self.trigger_field = TRIGGER_FIELDS.get(info.resource)
        self.untriggered: set[Watcher] = set()
        self.by_trigger: dict[str, set[Watcher]] = {}
        self._sorted_keys: list[str] | None = None

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.add(watcher)
        if watcher.trigger is None or self.trigger_field is None:
            self.untriggered.add(watcher)
        else:
            self.by_trigger.setdefault(watcher.trigger, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        self.untriggered.discard(watcher)
        if watcher.trigger is not None:
            bucket = self.by_trigger.get(watcher.trigger)
            if bucket is not None:
                bucket.discard(watcher)
                if not bucket:
                    del self.by_trigger[watcher.trigger]

    def _interested(self, event: "CacheEvent") -> list[Watcher]:
        """The watchers an event can concern: untriggered ones and those of its values."""
        if not self.by_trigger:
            return list(self.untriggered)
        out = list(self.untriggered)
        values = {self.trigger_field(event.current.obj)}
        if event.prev is not None:
            values.add(self.trigger_field(event.prev))
        for value in values:
            out.extend(self.by_trigger.get(value, ()))
        return out

    def namespace_of(self, key: str) -> str:
        if not self.info.namespaced:
            return ""
        return key[len(self.prefix):].partition("/")[0]

    def sorted_items(self, namespace: str = "") -> list[tuple[str, CachedObject]]:
        """Objects in key order (the order the store lists them in)."""
        if namespace and self.info.namespaced:
            bucket = self.by_namespace.get(namespace, {})
            return sorted(bucket.items())
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self.objects)
        objects = self.objects
        return [(k, objects[k]) for k in self._sorted_keys]

    def _put(self, key: str, cached: CachedObject) -> None:
        if key not in self.objects:
            self._sorted_keys = None
        self.objects[key] = cached
        if self.info.namespaced:
            self.by_namespace.setdefault(self.namespace_of(key), {})[key] = cached

    def _remove(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            self._sorted_keys = None
        if self.info.namespaced:
            bucket = self.by_namespace.get(self.namespace_of(key))
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self.by_namespace[self.namespace_of(key)]

    def load(self, key: str, obj: dict, revision: int) -> None:
        self._put(key, CachedObject.of(obj, revision))

    def apply(self, event: Event) -> CacheEvent | None:
        """Fold one store event into the cache and hand it to the watchers."""
        key = event.kv.key
        prev_cached = self.objects.get(key)
        prev = prev_cached.obj if prev_cached is not None else None
        if prev is None and event.prev_kv is not None and event.prev_kv.value:
            prev = decode(event.prev_kv.value, event.prev_kv.mod_revision)
        if event.type == "DELETE":
            if prev is None:
                return None
            obj = dict(prev)
            obj["metadata"] = {**(prev.get("metadata") or {}),
                               "resourceVersion": str(event.revision)}
            cached = CachedObject.of(obj, event.revision)
            self._remove(key)
            kind = "DELETED"
        else:
            try:
                obj = decode(event.kv.value, event.revision)
            except orjson.JSONDecodeError:
                log.error("undecodable value at %s (revision %d)", key, event.revision)
                return None
            cached = CachedObject.of(obj, event.revision)
            self._put(key, cached)
            kind = "ADDED" if prev is None else "MODIFIED"
        cache_event = CacheEvent(kind, key, self.namespace_of(key), event.revision, cached,
                                 prev)
        self.events.append(cache_event)
        while len(self.events) > self.history:
            self.floor = self.events.popleft().revision
        for watcher in self._interested(cache_event):
            watcher.offer(cache_event)
        return cache_event

    def events_after(self, revision: int) -> list[CacheEvent]:
        """Changes strictly after ``revision``; the caller checked ``revision >= floor``."""
        out: list[CacheEvent] = []
        for event in reversed(self.events):
            if event.revision <= revision:
                break
            out.append(event)
        out.reverse()
        return out

    def close_watchers(self) -> None:
        for watcher in list(self.watchers):
            watcher.close()


def _storage_resources() -> dict[str, ResourceInfo]:
    """Storage prefix -> the resource whose objects live there (first one wins)."""
    out: dict[str, ResourceInfo] = {}
    for info in RESOURCES:
        out.setdefault(info.storage_prefix(), info)
    return out


class WatchCache:
    """All resource caches, fed by one store watch; see the module docstring."""

    def __init__(self, store: Store, history: int = 10_000):
        self.store = store
        self.history = history
        self.caches: dict[str, ResourceCache] = {
            prefix: ResourceCache(info, history)
            for prefix, info in _storage_resources().items()}
        self.revision = 0
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._waiter_seq = 0
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Load every object, then follow the store from that revision on."""
        revision = await self._load_all()
        self._task = asyncio.create_task(self._follow(revision), name="watch-cache")

    def close_watchers(self) -> None:
        """End every client watch (each stream finishes after what it already queued)."""
        for cache in self.caches.values():
            cache.close_watchers()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for cache in self.caches.values():
            cache.close_watchers()
        for _, _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        self._waiters.clear()

    async def _load_all(self) -> int:
        for cache in self.caches.values():
            cache.objects.clear()
            cache.by_namespace.clear()
            cache._sorted_keys = None
        start_after: str | None = None
        revision: int | None = None
        while True:
            page = await self.store.list(REGISTRY_PREFIX, revision=revision, limit=LIST_PAGE,
                                         start_after=start_after)
            revision = page.revision
            for kv in page.items:
                cache = self.cache_for_key(kv.key)
                if cache is not None:
                    try:
                        cache.load(kv.key, decode(kv.value, kv.mod_revision), kv.mod_revision)
                    except orjson.JSONDecodeError:
                        log.error("undecodable value at %s", kv.key)
            if not page.more or not page.items:
                break
            start_after = page.items[-1].key
        for cache in self.caches.values():
            cache.floor = revision
            cache.events.clear()
        self._advance(revision)
        return revision

    async def _follow(self, revision: int) -> None:
        """The one store watch; re-established after errors, relisting if compacted."""
        while True:
            # Every key, not only /registry/: bookkeeping writes (the compactor's key) move
            # the store revision too, and a consistent read waits for the newest revision.
            watch = self.store.watch(WATCH_PREFIX, revision)
            try:
                async for batch in watch:
                    for event in batch:
                        cache = self.cache_for_key(event.kv.key)
                        if cache is not None:
                            cache.apply(event)
                        revision = event.revision
                    self._advance(revision)
            except CompactedError:
                log.warning("watch cache fell behind compaction; reloading")
                for cache in self.caches.values():
                    cache.close_watchers()
                revision = await self._load_all()
            except StoreError as exc:
                log.warning("store watch ended (%s); resuming after revision %d", exc, revision)
                await asyncio.sleep(RESTART_DELAY_SECONDS)
            finally:
                await watch.close()

    # --- revision tracking ---------------------------------------------------------

    def _advance(self, revision: int) -> None:
        if revision > self.revision:
            self.revision = revision
        while self._waiters and self._waiters[0][0] <= self.revision:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, revision: int, timeout: float = 3.0) -> bool:
        """Wait until the cache reflects ``revision``; False on timeout."""
        if revision <= self.revision:
            return True
        fut = asyncio.get_running_loop().create_future()
        self._waiter_seq += 1
        heapq.heappush(self._waiters, (revision, self._waiter_seq, fut))
        try:
            await aio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def sync(self, timeout: float = 3.0) -> bool:
        """Catch up with the store's current revision (a consistent read's precondition)."""
        return await self.wait_for(await self.store.current_revision(), timeout)

    # --- reads ---------------------------------------------------------------------

    def cache_for(self, info: ResourceInfo) -> ResourceCache:
        return self.caches[info.storage_prefix()]

    def cache_for_key(self, key: str) -> ResourceCache | None:
        if not key.startswith(REGISTRY_PREFIX):
            return None
        rest = key[len(REGISTRY_PREFIX):]
        first, _, tail = rest.partition("/")
        second = tail.partition("/")[0]
        return (self.caches.get(f"{REGISTRY_PREFIX}{first}/{second}/")
                or self.caches.get(f"{REGISTRY_PREFIX}{first}/"))

    def get(self, info: ResourceInfo, namespace: str, name: str) -> CachedObject | None:
        key = info.storage_key(namespace if info.namespaced else None, name)
        return self.cache_for(info).objects.get(key)

    def list(self, info: ResourceInfo, namespace: str = "",
             matches: Filter | None = None) -> list[CachedObject]:
        """Current objects in key order, optionally in one namespace and filtered."""
        items = self.cache_for(info).sorted_items(namespace)
        if matches is None:
            return [c for _, c in items]
        return [c for _, c in items if matches(c.obj)]

    def items(self, info: ResourceInfo, namespace: str = "") -> Iterable[tuple[str, CachedObject]]:
        return self.cache_for(info).sorted_items(namespace)

    def watcher(self, info: ResourceInfo, namespace: str, matches: Filter | None,
                trigger: str | None = None) -> Watcher:
        """A registered watcher; ``trigger`` is the exact value its selector requires of
        the resource's trigger field (see ``TRIGGER_FIELDS``), if any."""
        cache = self.cache_for(info)
        watcher = Watcher(cache, namespace if info.namespaced else "", matches,
                          trigger=trigger if cache.trigger_field is not None else None)
        cache.add_watcher(watcher)
        return watcher
