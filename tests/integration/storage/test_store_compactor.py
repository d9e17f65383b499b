"""The periodic compactor: one interval of history kept, one server compacts per interval."""

from __future__ import annotations

import pytest

from tinykube.storage.compactor import COMPACT_REV_KEY, Compactor
from tinykube.storage.store import CompactedError, Store
from tinykube.testing.store import next_batch


async def test_compacts_to_the_previous_interval(store: Store, prefix: str) -> None:
    compactor = Compactor(store, interval=3600)
    r0 = await store.create(prefix + "a", b"0")
    r1 = await store.update(prefix + "a", b"1", r0)
    assert await compactor.run_once() == 0  # the first interval only records a revision
    r2 = await store.update(prefix + "a", b"2", r1)
    compacted = await compactor.run_once()
    assert r1 <= compacted < r2
    with pytest.raises(CompactedError):
        await store.get(prefix + "a", revision=r0)
    _, kv = await store.get(prefix + "a", revision=r2)  # the last interval stays readable
    assert kv is not None and kv.value == b"2"


async def test_two_compactors_share_intervals(store: Store, prefix: str) -> None:
    _, existing = await store.get(COMPACT_REV_KEY)
    a, b = Compactor(store), Compactor(store)
    if existing is not None:  # another test on this store already claimed intervals
        a._seen = b._seen = existing.mod_revision
    await store.create(prefix + "x", b"")
    await a.run_once()
    assert await b.run_once() == 0, "b must lose the interval a just claimed"
    await store.create(prefix + "y", b"")
    results = [await a.run_once(), await b.run_once()]
    assert sum(1 for r in results if r) <= 1


async def test_started_compactor_claims_intervals_until_stopped(store: Store) -> None:
    watch = store.watch(COMPACT_REV_KEY, await store.current_revision())
    compactor = Compactor(store, interval=0.05)
    compactor.start()
    try:
        first = await next_batch(watch)
        second = await next_batch(watch)
        assert first[0].kv.key == COMPACT_REV_KEY and second[0].revision > first[0].revision
    finally:
        await compactor.stop()
        await watch.close()
    assert compactor._task is None
