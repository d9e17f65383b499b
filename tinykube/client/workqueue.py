"""A work queue with client-go's guarantees, for level-triggered controllers.

- A key added many times before a worker takes it is processed once (the ``dirty`` set).
- A key is never handed to two workers at once: a key re-added while it is being processed
  (``processing``) waits, and is queued again when the worker calls ``done``.
- ``add_after`` delays a key (the earliest pending delay wins); ``add_rate_limited`` delays
  it by a per-key exponential back-off (``base_delay * 2**failures``, capped at
  ``max_delay``) until ``forget`` resets it.
- ``shutdown`` wakes every waiting ``get``; keys already queued are still handed out, then
  ``get`` raises ``ShutDown``.

``add`` is synchronous so informer handlers (plain callables) can enqueue directly.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class ShutDown(Exception):
    """Raised by ``WorkQueue.get`` once the queue is shut down and drained."""


class WorkQueue:
    """Deduplicating, rate-limited FIFO of keys for controller workers."""

    def __init__(self, name: str, base_delay: float = 0.005, max_delay: float = 1000) -> None:
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._delayed: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[Hashable, int] = {}
        self._shutting_down = False

    # -- adding --------------------------------------------------------------------------

    def add(self, key: Hashable) -> None:
        """Queue ``key`` unless it is already waiting; defer it if it is being processed."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: Hashable, seconds: float) -> None:
        """Queue ``key`` after ``seconds``; an earlier pending delay for the key is kept."""
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + seconds
        pending = self._delayed.get(key)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        handle = loop.call_at(ready_at, self._fire_delayed, key)
        self._delayed[key] = (ready_at, handle)

    def _fire_delayed(self, key: Hashable) -> None:
        self._delayed.pop(key, None)
        self.add(key)

    def when(self, key: Hashable) -> float:
        """The back-off the next ``add_rate_limited(key)`` would wait, without counting it."""
        failures = self._failures.get(key, 0)
        return min(self.base_delay * (2 ** failures), self.max_delay)

    def add_rate_limited(self, key: Hashable) -> None:
        """Queue ``key`` after its exponential back-off, counting one more failure."""
        delay = self.when(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.add_after(key, delay)

    def forget(self, key: Hashable) -> None:
        """Reset ``key``'s back-off (call after it was processed successfully)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)

    # -- taking --------------------------------------------------------------------------

    async def get(self) -> Hashable:
        """The next key; the caller must call ``done(key)`` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # We may have been woken for an item we will now not take: pass it on.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Hashable) -> None:
        """Mark ``key`` finished; if it was re-added meanwhile, queue it again now."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # -- lifecycle -----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop accepting keys, drop pending delays and wake every waiting worker."""
        self._shutting_down = True
        for _, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def len(self) -> int:
        """Keys waiting to be handed out (not those being processed or delayed)."""
        return len(self._queue)

    def __len__(self) -> int:
        return len(self._queue)
