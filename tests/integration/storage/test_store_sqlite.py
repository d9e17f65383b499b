"""SQLite-specific behaviour: group commit, slow watchers, persistence, compaction, TTL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tinykube.storage.sqlite import SQLiteStore
from tinykube.storage.watchhub import WatchOverflowError
from tinykube.testing.store import collect_until, next_batch


@pytest.fixture
async def db(tmp_path: Path):
    store = SQLiteStore(str(tmp_path / "s.db"))
    try:
        yield store
    finally:
        await store.close()


def rows(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM kine").fetchone()[0]


async def test_concurrent_writers_share_commits(db: SQLiteStore) -> None:
    await db.create("/warm", b"")
    before = db.stats.commits
    revs = await asyncio.gather(*[db.create(f"/g/{i}", b"v") for i in range(500)])
    assert sorted(revs) == list(range(min(revs), min(revs) + 500))
    assert db.stats.commits - before < 100, "writes were not grouped into shared commits"


async def test_conflicting_writes_in_one_batch(db: SQLiteStore) -> None:
    rev = await db.create("/k", b"0")
    results = await asyncio.gather(*[db.update("/k", str(i).encode(), rev) for i in range(10)],
                                   return_exceptions=True)
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(type(r).__name__ == "ConflictError" for r in results if not isinstance(r, int))


async def test_slow_watcher_is_closed_and_writers_are_not_blocked(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "slow.db"), max_watch_events=50)
    try:
        start = await store.current_revision()
        slow = store.watch("/w/", start)
        fast = store.watch("/w/", start)
        first = await store.create("/w/first", b"")
        assert [e.revision for e in await collect_until(slow, first)] == [first]
        fast_events: list[int] = []
        progress = asyncio.Event()

        async def follow() -> None:
            async for batch in fast:
                fast_events.extend(e.revision for e in batch)
                progress.set()

        async def caught_up(revision: int) -> None:
            while not fast_events or fast_events[-1] < revision:
                progress.clear()
                await progress.wait()

        follower = asyncio.create_task(follow())
        # The slow watcher reads nothing meanwhile; writes must not wait for it.
        revs = [await store.create(f"/w/{i}", b"") for i in range(200)]
        delivered: list[int] = []
        with pytest.raises(WatchOverflowError):
            while True:
                delivered.extend(e.revision for e in await next_batch(slow))
        assert delivered == revs[:len(delivered)] and len(delivered) <= 50
        await asyncio.wait_for(caught_up(revs[-1]), 5)
        assert fast_events == [first] + revs
        await fast.close()
        await asyncio.wait_for(follower, 5)
        await slow.close()
    finally:
        await store.close()


async def test_reopen_keeps_data_revisions_and_compaction(tmp_path: Path) -> None:
    path = str(tmp_path / "p.db")
    store = SQLiteStore(path)
    r1 = await store.create("/a", b"1")
    r2 = await store.update("/a", b"2", r1)
    await store.compact(r2)
    await store.close()
    again = SQLiteStore(path)
    try:
        assert await again.current_revision() == r2
        _, kv = await again.get("/a")
        assert kv is not None and kv.value == b"2" and kv.create_revision == r1
        from tinykube.storage.store import CompactedError
        with pytest.raises(CompactedError):
            await again.get("/a", revision=r1)
        assert await again.create("/b", b"") == r2 + 1
    finally:
        await again.close()


async def test_compaction_keeps_writes_flowing_and_removes_history(db: SQLiteStore) -> None:
    keys = [f"/c/{i}" for i in range(50)]
    for key in keys:
        await db.create(key, b"0")
    for round_ in range(1, 21):
        await asyncio.gather(*[db.update(k, str(round_).encode(), 0) for k in keys])
    target = await db.current_revision()
    assert rows(db.path) == 50 * 21
    watch = db.watch("/c/", target)
    compaction = asyncio.ensure_future(db.compact(target))
    revs = []
    while not compaction.done():
        revs.append(await db.update(keys[0], b"during", 0))
    await compaction
    assert revs, "no write completed while compaction ran"
    events = await collect_until(watch, revs[-1])
    assert [e.revision for e in events] == revs
    assert rows(db.path) == 50 + len(revs)
    assert db.stats.compaction_windows >= 1
    listed = await db.list("/c/")
    assert len(listed.items) == 50


async def test_ttl_expires_after_the_writer_is_gone(tmp_path: Path) -> None:
    path = str(tmp_path / "ttl.db")
    first = SQLiteStore(path)
    created = await first.create("/events/e1", b"{}", lease_ttl=1)
    await first.close()
    second = SQLiteStore(path)
    try:
        watch = second.watch("/events/", created)
        batch = await next_batch(watch, timeout=10)
        assert [(e.type, e.kv.key) for e in batch] == [("DELETE", "/events/e1")]
        await watch.close()
    finally:
        await second.close()


async def test_updating_a_ttl_key_moves_its_expiry(db: SQLiteStore) -> None:
    rev = await db.create("/events/e", b"1", lease_ttl=1)
    rev = await db.update("/events/e", b"2", rev, lease_ttl=60)
    watch = db.watch("/events/", rev)
    keep = await db.create("/events/marker", b"", lease_ttl=1)
    events = await collect_until(watch, keep)
    deleted = await next_batch(watch, timeout=10)
    assert [e.kv.key for e in deleted] == ["/events/marker"]
    assert (await db.get("/events/e"))[1] is not None
    assert [e.revision for e in events] == [keep]
    await watch.close()
