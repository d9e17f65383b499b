"""The watch fan-out: prefix filtering, bounded buffers, and catch-up without gaps or repeats."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.storage.store import Event, KeyValue
from tinykube.storage.watchhub import Hub, LogWatch, WatchOverflowError


def put(key: str, rev: int) -> Event:
    return Event("PUT", KeyValue(key, b"v", rev, rev), None)


async def test_subscription_filters_by_prefix() -> None:
    hub = Hub()
    sub = hub.subscribe("/a/")
    hub.publish([put("/a/x", 1), put("/b/x", 2), put("/a/y", 3)])
    hub.publish([put("/b/z", 4)])
    batch = await asyncio.wait_for(sub.get(), 1)
    assert batch is not None and [e.revision for e in batch] == [1, 3]
    assert sub._batches == type(sub._batches)()  # the /b/ batch was not queued at all


async def test_overflow_delivers_buffered_then_raises() -> None:
    hub = Hub(max_events=3)
    sub = hub.subscribe("/")
    hub.publish([put("/k", 1), put("/k", 2)])
    hub.publish([put("/k", 3), put("/k", 4)])  # would exceed 3 buffered events
    assert not sub.active and len(hub) == 0
    first = await sub.get()
    assert first is not None and [e.revision for e in first] == [1, 2]
    with pytest.raises(WatchOverflowError):
        await sub.get()


async def test_slow_watcher_does_not_affect_others() -> None:
    hub = Hub(max_events=2)
    slow, fast = hub.subscribe("/"), hub.subscribe("/")
    hub.publish([put("/k", 1)])
    assert await fast.get() is not None
    hub.publish([put("/k", 2)])
    assert await fast.get() is not None
    hub.publish([put("/k", 3)])
    assert not slow.active and fast.active


async def test_close_wakes_a_waiting_reader() -> None:
    hub = Hub()
    sub = hub.subscribe("/")
    waiter = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(waiter, 1) is None


async def test_logwatch_catch_up_then_live_drops_duplicates() -> None:
    hub = Hub()
    log = [put("/k", r) for r in range(1, 8)]
    reads: list[int] = []

    async def read_page(after: int) -> tuple[list[Event], bool]:
        reads.append(after)
        page = [e for e in log if e.revision > after][:3]
        return page, len(page) == 3

    watch = LogWatch(hub, "/", 2, read_page)
    # Live events that overlap the log arrive while the watch is still catching up.
    hub.publish([put("/k", 6), put("/k", 7)])
    hub.publish([put("/k", 8)])
    got: list[int] = []
    while not got or got[-1] < 8:
        got.extend(e.revision for e in await asyncio.wait_for(watch.__anext__(), 1))
    assert got == [3, 4, 5, 6, 7, 8]
    assert reads == [2, 5]  # the short second page ends the catch-up
    assert watch.last_revision == 8
    await watch.close()
    with pytest.raises(StopAsyncIteration):
        await watch.__anext__()


async def test_logwatch_propagates_read_errors() -> None:
    from tinykube.storage.store import CompactedError

    async def read_page(after: int) -> tuple[list[Event], bool]:
        raise CompactedError(after, 10)

    watch = LogWatch(Hub(), "/", 1, read_page)
    with pytest.raises(CompactedError):
        await watch.__anext__()
