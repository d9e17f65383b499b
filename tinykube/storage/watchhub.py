"""Fan-out of committed changes to watchers, with bounded buffers and catch-up from a log.

A backend that learns about its own commits (the SQLite store) publishes each committed
batch to a ``Hub`` on the event loop. Each watcher owns a ``Subscription``: a bounded buffer
of batches filtered by key prefix. A watcher that falls too far behind is closed with
``WatchOverflowError`` rather than silently losing events, and never slows the writer.

``LogWatch`` turns a subscription into the ``Watch`` of the store contract, following
kine's order: subscribe first, then read the log after the start revision page by page,
then continue with the live buffer, dropping anything at or below the last revision
delivered. Every change after the start revision is delivered exactly once, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Awaitable, Callable

from tinykube.storage.store import Event, StoreError, UnavailableError

DEFAULT_MAX_BUFFERED_EVENTS = 10_000

#: Reads the log after a revision: returns (events in revision order, whether more remain).
PageReader = Callable[[int], Awaitable[tuple[list[Event], bool]]]


class WatchOverflowError(UnavailableError):
    """A watcher fell too far behind the writers and was closed; re-watch from its last revision."""


class Subscription:
    """One watcher's bounded buffer of live batches (filled on the loop by ``Hub.publish``)."""

    def __init__(self, hub: Hub, prefix: str, max_events: int):
        self.prefix = prefix
        self._hub = hub
        self._max_events = max_events
        self._batches: deque[list[Event]] = deque()
        self._buffered = 0
        self._error: BaseException | None = None
        self._closed = False
        self._wakeup = asyncio.Event()

    @property
    def active(self) -> bool:
        """Still receiving: neither closed nor failed."""
        return not self._closed and self._error is None

    def offer(self, events: list[Event]) -> None:
        """Queue the events under this prefix; overflow ends the subscription with an error."""
        if self._closed or self._error is not None:
            return
        mine = [e for e in events if e.kv.key.startswith(self.prefix)]
        if not mine:
            return
        if self._buffered + len(mine) > self._max_events:
            self.fail(WatchOverflowError(
                f"watch on {self.prefix!r} fell behind by more than {self._max_events} events"
            ))
            return
        self._batches.append(mine)
        self._buffered += len(mine)
        self._wakeup.set()

    def fail(self, error: BaseException) -> None:
        """End the subscription: buffered batches are still delivered, then ``error`` raises."""
        if self._error is None:
            self._error = error
        self._hub.unsubscribe(self)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._batches.clear()
        self._hub.unsubscribe(self)
        self._wakeup.set()

    async def get(self) -> list[Event] | None:
        """The next live batch; None once closed; raises the failure after the buffer drains."""
        while True:
            if self._closed:
                return None
            if self._batches:
                batch = self._batches.popleft()
                self._buffered -= len(batch)
                return batch
            if self._error is not None:
                raise self._error
            self._wakeup.clear()
            await self._wakeup.wait()


class Hub:
    """The set of live subscriptions of one store; publish is called on the event loop."""

    def __init__(self, max_events: int = DEFAULT_MAX_BUFFERED_EVENTS):
        self.max_events = max_events
        self._subs: set[Subscription] = set()

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(self, prefix: str) -> Subscription:
        sub = Subscription(self, prefix, self.max_events)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, events: list[Event]) -> None:
        if events:
            for sub in list(self._subs):
                sub.offer(events)

    def fail_all(self, error: StoreError) -> None:
        for sub in list(self._subs):
            sub.fail(error)


class LogWatch:
    """A watch that catches up from a log and then follows live commits (see module doc)."""

    def __init__(self, hub: Hub, prefix: str, after_revision: int, read_page: PageReader):
        self._sub = hub.subscribe(prefix)
        self._last = after_revision
        self._read_page = read_page
        self._catching_up = True
        self._closed = False

    def __aiter__(self) -> LogWatch:
        return self

    async def __anext__(self) -> list[Event]:
        while not self._closed:
            if self._catching_up:
                events, more = await self._read_page(self._last)
                self._catching_up = more
            else:
                got = await self._sub.get()
                if got is None:
                    break
                events = got
            fresh = [e for e in events if e.revision > self._last]
            if fresh:
                self._last = fresh[-1].revision
                return fresh
        raise StopAsyncIteration

    @property
    def last_revision(self) -> int:
        """The revision of the last event delivered (the start revision before any)."""
        return self._last

    async def close(self) -> None:
        self._closed = True
        self._sub.close()
