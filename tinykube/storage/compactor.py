"""Periodic compaction, as kube-apiserver runs it (``--etcd-compaction-interval``, 5 min).

Every interval the compactor compacts to the revision it saw one interval earlier, so
watchers always have at least one interval of history to resume from. Several API servers
may share a store: they coordinate through the ``compact_rev_key`` key exactly as upstream
does, with a compare-and-swap on it, so that only one of them compacts per interval and
the others just learn the new state.
"""

from __future__ import annotations

import asyncio
import logging

from tinykube.storage.store import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    Store,
    StoreError,
)

log = logging.getLogger(__name__)

COMPACT_REV_KEY = "compact_rev_key"
DEFAULT_INTERVAL = 300.0


class Compactor:
    """Owns one background task; ``run_once`` is the whole logic of one interval."""

    def __init__(self, store: Store, interval: float = DEFAULT_INTERVAL):
        self.store = store
        self.interval = interval
        self._seen = 0       # mod revision of compact_rev_key when we last looked (0: absent)
        self._pending = 0    # revision to compact to at the next interval
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """One interval: claim it via compact_rev_key, compact to the previous revision.

        Returns the revision compacted to (0 if another server took this interval or
        there was nothing to compact yet).
        """
        target, compacted = self._pending, 0
        try:
            value = str(target).encode()
            if self._seen == 0:
                self._seen = await self.store.create(COMPACT_REV_KEY, value)
            else:
                self._seen = await self.store.update(COMPACT_REV_KEY, value, self._seen)
        except ConflictError as exc:
            self._seen = exc.current.mod_revision if exc.current else 0
            target = 0
        except KeyExistsError:
            _, kv = await self.store.get(COMPACT_REV_KEY)
            self._seen = kv.mod_revision if kv else 0
            target = 0
        if target > 0:
            try:
                await self.store.compact(target)
                compacted = target
            except CompactedError:
                log.debug("revision %d was already compacted", target)
        self._pending = await self.store.current_revision()
        return compacted

    async def _run(self) -> None:
        while True:
            try:
                compacted = await self.run_once()
                if compacted:
                    log.info("compacted the store to revision %d", compacted)
            except StoreError as exc:
                log.warning("compaction failed, retrying next interval: %s", exc)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="store-compactor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
