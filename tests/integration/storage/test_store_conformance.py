"""The store contract, run unchanged against every backend (SQLite and real etcd)."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.storage.store import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    MAX_VALUE_BYTES,
    Store,
    ValueTooLargeError,
)

from tinykube.testing.store import collect_until, next_batch


async def test_get_absent_key(store: Store, prefix: str) -> None:
    rev, kv = await store.get(prefix + "missing")
    assert kv is None
    assert rev == await store.current_revision()


async def test_create_then_get(store: Store, prefix: str) -> None:
    before = await store.current_revision()
    rev = await store.create(prefix + "a", b'{"a":1}')
    assert rev > before
    read_rev, kv = await store.get(prefix + "a")
    assert read_rev >= rev
    assert kv is not None
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision) == (prefix + "a", b'{"a":1}', rev, rev)


async def test_create_existing_key_fails(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    with pytest.raises(KeyExistsError) as err:
        await store.create(prefix + "a", b"2")
    assert err.value.key == prefix + "a"
    _, kv = await store.get(prefix + "a")
    assert kv is not None and kv.value == b"1"


async def test_revisions_strictly_increase(store: Store, prefix: str) -> None:
    revs = [await store.create(f"{prefix}{i}", b"x") for i in range(5)]
    assert revs == sorted(set(revs))


async def test_update_with_expected_revision(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"1")
    updated = await store.update(prefix + "a", b"2", created)
    assert updated > created
    _, kv = await store.get(prefix + "a")
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision) == (b"2", created, updated)


async def test_update_conflict_carries_current(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"1")
    current = await store.update(prefix + "a", b"2", created)
    with pytest.raises(ConflictError) as err:
        await store.update(prefix + "a", b"3", created)
    assert err.value.current is not None
    assert (err.value.current.value, err.value.current.mod_revision) == (b"2", current)
    _, kv = await store.get(prefix + "a")
    assert kv is not None and kv.value == b"2"


async def test_update_unconditional_and_missing(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    await store.update(prefix + "a", b"2", 0)
    _, kv = await store.get(prefix + "a")
    assert kv is not None and kv.value == b"2"
    with pytest.raises(KeyNotFoundError):
        await store.update(prefix + "missing", b"x", 0)
    with pytest.raises(KeyNotFoundError):
        await store.update(prefix + "missing", b"x", 5)


async def test_delete_conditional(store: Store, prefix: str) -> None:
    created = await store.create(prefix + "a", b"1")
    updated = await store.update(prefix + "a", b"2", created)
    with pytest.raises(ConflictError) as err:
        await store.delete(prefix + "a", created)
    assert err.value.current is not None and err.value.current.mod_revision == updated
    rev, deleted = await store.delete(prefix + "a", updated)
    assert rev > updated
    assert (deleted.value, deleted.mod_revision, deleted.create_revision) == (b"2", updated, created)
    assert (await store.get(prefix + "a"))[1] is None
    with pytest.raises(KeyNotFoundError):
        await store.delete(prefix + "a")


async def test_recreate_after_delete(store: Store, prefix: str) -> None:
    await store.create(prefix + "a", b"1")
    await store.delete(prefix + "a")
    again = await store.create(prefix + "a", b"2")
    _, kv = await store.get(prefix + "a")
    assert kv is not None and (kv.value, kv.create_revision) == (b"2", again)


async def test_list_prefix_in_key_order(store: Store, prefix: str) -> None:
    for name in ["b", "a", "c/x", "ab"]:
        await store.create(prefix + "ns/" + name, name.encode())
    await store.create(prefix + "ns-other/a", b"no")
    await store.create(prefix + "nt", b"no")
    result = await store.list(prefix + "ns/")
    assert [kv.key[len(prefix):] for kv in result.items] == ["ns/a", "ns/ab", "ns/b", "ns/c/x"]
    assert result.more is False
    assert result.revision == await store.current_revision()
    assert await store.count(prefix + "ns/") == (result.revision, 4)


async def test_list_pagination_at_one_revision(store: Store, prefix: str) -> None:
    keys = [f"{prefix}k{i:03d}" for i in range(25)]
    for key in keys:
        await store.create(key, key.encode())
    first = await store.list(prefix, limit=10)
    assert first.more and len(first.items) == 10
    # Writes after the first page must not show up in later pages read at its revision.
    await store.create(prefix + "k0055", b"late")
    await store.delete(keys[20])
    seen = [kv.key for kv in first.items]
    page = first
    while page.more:
        page = await store.list(prefix, revision=first.revision, limit=10,
                                start_after=page.items[-1].key)
        assert page.revision == first.revision
        seen.extend(kv.key for kv in page.items)
    assert seen == keys


async def test_list_and_get_at_old_revision(store: Store, prefix: str) -> None:
    r1 = await store.create(prefix + "a", b"1")
    r2 = await store.create(prefix + "b", b"1")
    await store.update(prefix + "a", b"2", r1)
    await store.delete(prefix + "b", r2)
    old = await store.list(prefix, revision=r2)
    assert old.revision == r2
    assert [(kv.key[len(prefix):], kv.value) for kv in old.items] == [("a", b"1"), ("b", b"1")]
    now = await store.list(prefix)
    assert [(kv.key[len(prefix):], kv.value) for kv in now.items] == [("a", b"2")]
    rev, kv = await store.get(prefix + "a", revision=r1)
    assert rev == r1 and kv is not None and kv.value == b"1"


async def test_future_revision(store: Store, prefix: str) -> None:
    current = await store.create(prefix + "a", b"1")
    with pytest.raises(FutureRevisionError):
        await store.get(prefix + "a", revision=current + 1000)
    with pytest.raises(FutureRevisionError):
        await store.list(prefix, revision=current + 1000)


async def test_compaction(store: Store, prefix: str) -> None:
    r1 = await store.create(prefix + "a", b"1")
    r2 = await store.update(prefix + "a", b"2", r1)
    r3 = await store.create(prefix + "b", b"1")
    await store.delete(prefix + "b", r3)
    r5 = await store.update(prefix + "a", b"3", r2)
    await store.compact(r2 + 1)
    with pytest.raises(CompactedError):
        await store.get(prefix + "a", revision=r1)
    with pytest.raises(CompactedError):
        await store.list(prefix, revision=r1)
    # History from the compacted revision on is still readable.
    _, kv = await store.get(prefix + "a", revision=r2 + 1)
    assert kv is not None and kv.value == b"2"
    assert [kv.value for kv in (await store.list(prefix)).items] == [b"3"]
    _, kv = await store.get(prefix + "a")
    assert kv is not None and kv.mod_revision == r5
    with pytest.raises(CompactedError):
        await store.compact(r1)


async def test_watch_from_revision_in_order(store: Store, prefix: str) -> None:
    r1 = await store.create(prefix + "a", b"1")
    r2 = await store.update(prefix + "a", b"2", r1)
    r3 = await store.create(prefix + "b", b"x")
    await store.create("/registry/elsewhere-" + prefix[-13:], b"not mine")
    watch = store.watch(prefix, r1)
    try:
        first = await collect_until(watch, r3)
        assert [(e.type, e.revision) for e in first] == [("PUT", r2), ("PUT", r3)]
        assert first[0].prev_kv is not None and first[0].prev_kv.value == b"1"
        assert first[1].is_create
        # Live events after the catch-up continue without gaps or repeats.
        r4, _ = await store.delete(prefix + "a", r2)
        r5 = await store.create(prefix + "a", b"3")
        live = await collect_until(watch, r5)
        assert [(e.type, e.kv.key, e.revision) for e in live] == [
            ("DELETE", prefix + "a", r4), ("PUT", prefix + "a", r5)]
        assert live[0].prev_kv is not None and live[0].prev_kv.value == b"2"
        assert live[0].kv.value == b""
        assert live[1].is_create
    finally:
        await watch.close()


async def test_watch_sees_concurrent_writes_exactly_once(store: Store, prefix: str) -> None:
    start = await store.current_revision()
    watch = store.watch(prefix, start)
    try:
        revs = await asyncio.gather(*[store.create(f"{prefix}{i}", b"v") for i in range(200)])
        events = await collect_until(watch, max(revs))
        assert [e.revision for e in events] == sorted(revs)
    finally:
        await watch.close()


async def test_watch_close_ends_iteration(store: Store, prefix: str) -> None:
    watch = store.watch(prefix, await store.current_revision())
    rev = await store.create(prefix + "a", b"1")
    assert [e.revision for e in await collect_until(watch, rev)] == [rev]
    await watch.close()
    with pytest.raises(StopAsyncIteration):
        await next_batch(watch)


async def test_watch_compacted_revision(store: Store, prefix: str) -> None:
    r1 = await store.create(prefix + "a", b"1")
    r2 = await store.update(prefix + "a", b"2", r1)
    r3 = await store.update(prefix + "a", b"3", r2)
    await store.compact(r3)
    watch = store.watch(prefix, r1 - 1)
    try:
        with pytest.raises(CompactedError):
            await next_batch(watch)
    finally:
        await watch.close()
    ok = store.watch(prefix, r3)
    try:
        r4 = await store.update(prefix + "a", b"4", r3)
        assert [e.revision for e in await collect_until(ok, r4)] == [r4]
    finally:
        await ok.close()


async def test_ttl_key_expires_with_delete_event(store: Store, prefix: str) -> None:
    watch = store.watch(prefix, await store.current_revision())
    try:
        created = await store.create(prefix + "event", b"{}", lease_ttl=1)
        keep = await store.create(prefix + "keep", b"{}")
        _, kv = await store.get(prefix + "event")
        assert kv is not None and kv.lease != 0
        events = await collect_until(watch, keep)
        deleted = await asyncio.wait_for(next_batch(watch, timeout=15.0), 15.0)
        assert [(e.type, e.kv.key) for e in deleted] == [("DELETE", prefix + "event")]
        assert deleted[0].prev_kv is not None and deleted[0].prev_kv.mod_revision == created
        assert [e.revision for e in events] == [created, keep]
        assert (await store.get(prefix + "event"))[1] is None
        assert (await store.get(prefix + "keep"))[1] is not None
    finally:
        await watch.close()


async def test_value_size_limit(store: Store, prefix: str) -> None:
    big = b"x" * (MAX_VALUE_BYTES + 1)
    with pytest.raises(ValueTooLargeError, match="request is too large"):
        await store.create(prefix + "big", big)
    rev = await store.create(prefix + "ok", b"x" * (MAX_VALUE_BYTES - 1024))
    with pytest.raises(ValueTooLargeError):
        await store.update(prefix + "ok", big, rev)
    _, kv = await store.get(prefix + "ok")
    assert kv is not None and kv.mod_revision == rev
