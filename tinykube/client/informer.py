"""Informers: a local, indexed cache of one resource kept current by list + watch.

The chain is kopf's and client-go's: list (paged) -> replace the cache, emitting the
add/update/delete differences -> watch from the list's resourceVersion with bookmarks ->
apply each event -> on 410 Expired relist; on a dropped connection re-watch from the last
resourceVersion seen. The loop in ``_run`` is thin; the decisions live in finite functions
(``Cache.replace``, ``Informer.apply_list``, ``Informer.apply_event``) that tests call
directly.

Handlers are plain callables (``on_add(obj)``, ``on_update(old, new)``,
``on_delete(obj)``) called on the event loop; they must only enqueue work.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.client.rest import Client, ResourceClient

log = logging.getLogger(__name__)

Object = dict[str, Any]
IndexFunc = Callable[[Object], Iterable[str]]
AddHandler = Callable[[Object], None]
UpdateHandler = Callable[[Object, Object], None]
DeleteHandler = Callable[[Object], None]

LIST_PAGE_SIZE = 500
WATCH_TIMEOUT_RANGE = (300, 600)  # seconds; client-go picks 5-10 minutes at random
RETRY_INITIAL = 0.2
RETRY_MAX = 30.0


class Cache:
    """Objects by key (``ns/name`` or ``name``) with optional secondary indexes."""

    def __init__(self) -> None:
        self._items: dict[str, Object] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}

    def get(self, key: str) -> Object | None:
        return self._items.get(key)

    def list(self) -> list[Object]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Index every object by ``fn(obj)`` (a list of values), now and on every change."""
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    def by_index(self, name: str, value: str) -> list[Object]:
        keys = self._indices[name].get(value, ())
        return [self._items[k] for k in keys]

    def upsert(self, obj: Object) -> Object | None:
        """Store ``obj``; return the object it replaced, if any."""
        key = meta.key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        self._index(key, obj)
        return old

    def remove(self, key: str) -> Object | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def replace(self, objs: Iterable[Object]) -> tuple[list[Object], list[tuple[Object, Object]],
                                                       list[Object]]:
        """Make the cache exactly ``objs``; return (added, updated (old, new), deleted).

        An object counts as updated only when its resourceVersion changed.
        """
        added: list[Object] = []
        updated: list[tuple[Object, Object]] = []
        fresh: dict[str, Object] = {meta.key(o): o for o in objs}
        deleted = [self._items[k] for k in self._items.keys() - fresh.keys()]
        for obj in deleted:
            self.remove(meta.key(obj))
        for key, obj in fresh.items():
            old = self._items.get(key)
            if old is None:
                added.append(obj)
            elif meta.resource_version(old) != meta.resource_version(obj):
                updated.append((old, obj))
            else:
                continue
            self.upsert(obj)
        return added, updated, deleted

    def _index(self, key: str, obj: Object) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Object) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


class Informer:
    """One resource's list + watch loop feeding a ``Cache`` and event handlers."""

    def __init__(
        self,
        resource_client: ResourceClient,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync: float = 0,
    ) -> None:
        self.resource_client = resource_client
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.cache = Cache()
        self.resource_version: str | None = None
        self._handlers: list[tuple[AddHandler | None, UpdateHandler | None,
                                   DeleteHandler | None]] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.resource_client.info.resource

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def add_handlers(self, on_add: AddHandler | None = None,
                     on_update: UpdateHandler | None = None,
                     on_delete: DeleteHandler | None = None) -> None:
        """Register handlers; a late handler first sees every cached object as an add."""
        self._handlers.append((on_add, on_update, on_delete))
        if on_add is not None:
            for obj in self.cache.list():
                self._call(on_add, obj)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        self.cache.add_index(name, fn)

    # -- the finite steps ----------------------------------------------------------------

    async def list_all(self) -> tuple[list[Object], str]:
        """Every object (page by page) and the resourceVersion of the list."""
        items: list[Object] = []
        continue_: str | None = None
        resource_version = ""
        while True:
            page = await self.resource_client.list(
                namespace=self.namespace, label_selector=self.label_selector,
                field_selector=self.field_selector, limit=LIST_PAGE_SIZE, continue_=continue_,
            )
            items.extend(page.get("items") or ())
            list_meta = page.get("metadata") or {}
            if not resource_version:
                resource_version = list_meta.get("resourceVersion", "")
            continue_ = list_meta.get("continue")
            if not continue_:
                # The last page's revision is the one the whole list is consistent with.
                resource_version = list_meta.get("resourceVersion", resource_version)
                return items, resource_version

    def apply_list(self, items: list[Object], resource_version: str) -> None:
        """Replace the cache with a fresh list and tell handlers what changed."""
        added, updated, deleted = self.cache.replace(items)
        self.resource_version = resource_version
        for obj in deleted:
            self._dispatch_delete(obj)
        for obj in added:
            self._dispatch_add(obj)
        for old, new in updated:
            self._dispatch_update(old, new)
        self._synced.set()

    def apply_event(self, event_type: str, obj: Object) -> None:
        """Apply one watch event to the cache and the handlers."""
        rv = meta.resource_version(obj)
        if rv:
            self.resource_version = rv
        if event_type == "BOOKMARK":
            return
        if event_type in ("ADDED", "MODIFIED"):
            old = self.cache.upsert(obj)
            if old is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(old, obj)
        elif event_type == "DELETED":
            self.cache.remove(meta.key(obj))
            self._dispatch_delete(obj)
        else:
            log.warning("informer %s: ignoring watch event of type %r", self.name, event_type)

    def resync_all(self) -> None:
        """Replay every cached object as an update (periodic resync)."""
        for obj in self.cache.list():
            self._dispatch_update(obj, obj)

    # -- the loop ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop; return once the first list is in the cache."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.name}")
            self._task.add_done_callback(self._loop_ended)
            if self.resync > 0:
                self._resync_task = asyncio.create_task(
                    self._resync_loop(), name=f"informer-resync-{self.name}")
        await self.wait_for_sync()

    async def wait_for_sync(self) -> None:
        """Wait for the first list; re-raise if the loop died before it."""
        if self._synced.is_set():
            return
        assert self._task is not None, "start() the informer first"
        waiter = asyncio.ensure_future(self._synced.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._synced.is_set():
            self._task.result()  # raises the loop's failure
            raise RuntimeError(f"informer {self.name} stopped before syncing")

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("informer %s stopped: %r", self.name, task.exception(),
                      exc_info=task.exception())

    async def stop(self) -> None:
        for task in (self._task, self._resync_task):
            if task is not None:
                task.cancel()
        for task in (self._task, self._resync_task):
            if task is not None:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._resync_task = None

    async def _run(self) -> None:
        delay = RETRY_INITIAL
        need_list = True
        while True:
            try:
                if need_list:
                    items, rv = await self.list_all()
                    self.apply_list(items, rv)
                    need_list = False
                await self._watch_once()
                delay = RETRY_INITIAL
            except ApiError as exc:
                if exc.code == 410:
                    log.info("informer %s: resourceVersion %s expired, relisting",
                             self.name, self.resource_version)
                    need_list = True
                    continue
                log.warning("informer %s: %s; retrying in %.1fs", self.name, exc, delay)
                need_list = need_list or exc.code >= 500
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
            except (ConnectionError, asyncio.TimeoutError) as exc:
                log.warning("informer %s: %s; retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _watch_once(self) -> None:
        """Watch from the current resourceVersion until the server ends the stream."""
        async for event_type, obj in self.resource_client.watch(
            namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, resource_version=self.resource_version,
            timeout_seconds=random.randint(*WATCH_TIMEOUT_RANGE), allow_bookmarks=True,
        ):
            self.apply_event(event_type, obj)

    async def _resync_loop(self) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(self.resync)
            self.resync_all()

    # -- dispatch ------------------------------------------------------------------------

    def _dispatch_add(self, obj: Object) -> None:
        for on_add, _, _ in self._handlers:
            if on_add is not None:
                self._call(on_add, obj)

    def _dispatch_update(self, old: Object, new: Object) -> None:
        for _, on_update, _ in self._handlers:
            if on_update is not None:
                self._call(on_update, old, new)

    def _dispatch_delete(self, obj: Object) -> None:
        for _, _, on_delete in self._handlers:
            if on_delete is not None:
                self._call(on_delete, obj)

    def _call(self, handler: Callable[..., None], *args: Object) -> None:
        """Run one handler; a failing handler is logged and never stops the informer."""
        try:
            handler(*args)
        except Exception:  # noqa: BLE001 - a handler bug must not kill the watch loop
            log.exception("informer %s: handler %r failed", self.name, handler)


class InformerFactory:
    """Shares one informer per (resource, group, selectors) among a process's controllers."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._informers: dict[tuple[Any, ...], Informer] = {}

    def informer(self, resource: str, group: str | None = None, **selectors: Any) -> Informer:
        rc = self.client.resource(resource, group)
        key = (rc.info.group, rc.info.resource, tuple(sorted(selectors.items())))
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(rc, **selectors)
            self._informers[key] = informer
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def start_all(self) -> None:
        """Start every informer and wait until all have synced."""
        await asyncio.gather(*(i.start() for i in self._informers.values()))

    async def stop_all(self) -> None:
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
