"""WorkQueue keeps client-go's guarantees: dedup, one worker per key, delays, back-off."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.client.workqueue import ShutDown, WorkQueue


async def test_duplicate_adds_collapse_and_order_is_fifo():
    q = WorkQueue("t")
    for key in ("a", "b", "a", "c", "b"):
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_key_readded_while_processing_waits_for_done():
    q = WorkQueue("t")
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    assert len(q) == 0  # not handed to a second worker while the first holds it
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.done("a")
    assert await asyncio.wait_for(getter, 1) == "a"


async def test_done_without_readd_does_not_requeue():
    q = WorkQueue("t")
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0


async def test_add_after_fires_once_with_earliest_delay():
    q = WorkQueue("t")
    q.add_after("a", 30)
    q.add_after("a", 0.01)
    assert await asyncio.wait_for(q.get(), 1) == "a"
    q.done("a")
    assert len(q) == 0


async def test_rate_limited_backoff_grows_and_forget_resets():
    q = WorkQueue("t", base_delay=0.01, max_delay=0.05)
    assert q.when("k") == 0.01
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 3
    assert q.when("k") == 0.05  # 0.08 capped
    q.forget("k")
    assert q.when("k") == 0.01 and q.num_requeues("k") == 0
    assert await asyncio.wait_for(q.get(), 1) == "k"


async def test_shutdown_wakes_waiters_after_draining():
    q = WorkQueue("t")
    q.add("last")
    waiter = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    assert await asyncio.wait_for(waiter, 1) == "last"
    with pytest.raises(ShutDown):
        await asyncio.wait_for(second, 1)
    q.add("ignored")
    assert len(q) == 0


async def test_cancelled_getter_passes_its_wakeup_on():
    q = WorkQueue("t")
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("x")
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    assert await asyncio.wait_for(second, 1) == "x"


async def test_no_key_is_processed_by_two_workers_concurrently():
    q = WorkQueue("t")
    active: set[str] = set()
    overlaps = 0
    processed = 0

    async def worker():
        nonlocal overlaps, processed
        while True:
            try:
                key = await q.get()
            except ShutDown:
                return
            if key in active:
                overlaps += 1
            active.add(key)
            await asyncio.sleep(0)
            q.add(key) if processed < 200 else None
            active.discard(key)
            processed += 1
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for i in range(5):
        q.add(f"k{i}")
    while processed < 200:
        await asyncio.sleep(0.001)
    q.shutdown()
    await asyncio.wait_for(asyncio.gather(*workers), 2)
    assert overlaps == 0
