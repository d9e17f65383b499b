"""Random operation sequences checked against a dict-of-revisions model, on every backend.

The model keeps the map as of each revision the store returned; a read at revision R must
equal the model's newest snapshot at or below R, a watch from R must replay exactly the
model's changes after R, and reads below the compacted revision must fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from typing import Any, Coroutine, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tinykube.storage.store import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Store,
    open_store,
)
from tinykube.testing.store import collect_until

T = TypeVar("T")

KEYS = st.sampled_from(["a", "b", "c", "d/e", "d/f"])
VALUES = st.binary(min_size=0, max_size=8)


@dataclass(frozen=True)
class Entry:
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class Change:
    revision: int
    type: str
    key: str
    prev: Entry | None


class StoreModel(RuleBasedStateMachine):
    """Drives one store in its own event loop; ``url`` is set per backend by the test."""

    url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store: Store = open_store(self.url or "memory://")
        self.prefix = f"/registry/model-{uuid.uuid4().hex[:10]}/"
        self.start = self.run(self.store.current_revision())
        self.state: dict[str, Entry] = {}
        self.snapshots: list[tuple[int, dict[str, Entry]]] = [(self.start, {})]
        self.changes: list[Change] = []
        self.compacted = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()

    def record(self, revision: int, type_: str, key: str, prev: Entry | None) -> None:
        assert revision > self.snapshots[-1][0], "revisions must strictly increase"
        self.snapshots.append((revision, dict(self.state)))
        self.changes.append(Change(revision, type_, key, prev))

    def snapshot_at(self, revision: int) -> dict[str, Entry]:
        return [snap for rev, snap in self.snapshots if rev <= revision][-1]

    # ----- writes -----------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES)
    def create(self, key: str, value: bytes) -> None:
        full = self.prefix + key
        if key in self.state:
            try:
                self.run(self.store.create(full, value))
            except KeyExistsError:
                return
            raise AssertionError("create of an existing key succeeded")
        rev = self.run(self.store.create(full, value))
        self.state[key] = Entry(value, rev, rev)
        self.record(rev, "PUT", key, None)

    @rule(key=KEYS, value=VALUES, stale=st.booleans(), unconditional=st.booleans())
    def update(self, key: str, value: bytes, stale: bool, unconditional: bool) -> None:
        full = self.prefix + key
        current = self.state.get(key)
        if current is None:
            try:
                self.run(self.store.update(full, value, 0 if unconditional else 1))
            except KeyNotFoundError:
                return
            raise AssertionError("update of a missing key succeeded")
        expected = 0 if unconditional else current.mod_revision - (1 if stale else 0)
        if expected and stale:
            try:
                self.run(self.store.update(full, value, expected))
            except ConflictError as err:
                assert err.current is not None
                assert (err.current.value, err.current.mod_revision) == (
                    current.value, current.mod_revision)
                return
            raise AssertionError("update with a stale revision succeeded")
        rev = self.run(self.store.update(full, value, expected))
        self.state[key] = Entry(value, current.create_revision, rev)
        self.record(rev, "PUT", key, current)

    @rule(key=KEYS, conditional=st.booleans())
    def delete(self, key: str, conditional: bool) -> None:
        full = self.prefix + key
        current = self.state.get(key)
        if current is None:
            with_exc = None
            try:
                self.run(self.store.delete(full))
            except KeyNotFoundError as exc:
                with_exc = exc
            assert with_exc is not None, "delete of a missing key succeeded"
            return
        rev, deleted = self.run(
            self.store.delete(full, current.mod_revision if conditional else 0)
        )
        assert (deleted.value, deleted.mod_revision) == (current.value, current.mod_revision)
        del self.state[key]
        self.record(rev, "DELETE", key, current)

    @precondition(lambda self: len(self.snapshots) > 2)
    @rule(pick=st.floats(min_value=0, max_value=1))
    def compact(self, pick: float) -> None:
        candidates = [rev for rev, _ in self.snapshots if rev > max(self.compacted, self.start)]
        if not candidates:
            return
        target = candidates[int(pick * (len(candidates) - 1))]
        self.run(self.store.compact(target))
        self.compacted = target

    # ----- reads ------------------------------------------------------------------------

    @rule(pick=st.floats(min_value=0, max_value=1), limit=st.integers(min_value=0, max_value=3))
    def list_at_revision(self, pick: float, limit: int) -> None:
        revs = [rev for rev, _ in self.snapshots]
        revision = revs[int(pick * (len(revs) - 1))]
        if revision == 0:
            return  # revision 0 means "now" to a store, not the empty start
        if revision < self.compacted:
            try:
                self.run(self.store.list(self.prefix, revision=revision))
            except CompactedError:
                return
            raise AssertionError(f"list at compacted revision {revision} succeeded")
        expected = sorted(self.snapshot_at(revision).items())
        got: list[tuple[str, Entry]] = []
        start_after = None
        while True:
            page = self.run(self.store.list(self.prefix, revision=revision, limit=limit,
                                            start_after=start_after))
            got.extend((kv.key[len(self.prefix):],
                        Entry(kv.value, kv.create_revision, kv.mod_revision)) for kv in page.items)
            if not page.more:
                break
            start_after = page.items[-1].key
        assert got == expected

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        _, kv = self.run(self.store.get(self.prefix + key))
        entry = self.state.get(key)
        if entry is None:
            assert kv is None
        else:
            assert kv is not None
            assert Entry(kv.value, kv.create_revision, kv.mod_revision) == entry

    @precondition(lambda self: self.changes)
    @rule(pick=st.floats(min_value=0, max_value=1))
    def watch_from(self, pick: float) -> None:
        revs = [self.start] + [c.revision for c in self.changes]
        after = revs[int(pick * (len(revs) - 1))]
        if after == self.compacted - 1:
            return  # etcd starts this watch at the compacted revision itself; SQLite refuses
        watch = self.store.watch(self.prefix, after)
        try:
            expected = [c for c in self.changes if c.revision > after]
            if after < self.compacted:
                try:
                    self.run(collect_until(watch, self.changes[-1].revision, timeout=5))
                except CompactedError:
                    return
                raise AssertionError(f"watch from compacted revision {after} succeeded")
            if not expected:
                return
            events = self.run(collect_until(watch, expected[-1].revision, timeout=5))
            got = [(e.revision, e.type, e.kv.key[len(self.prefix):],
                    None if e.prev_kv is None else Entry(e.prev_kv.value, e.prev_kv.create_revision,
                                                         e.prev_kv.mod_revision))
                   for e in events]
            assert got == [(c.revision, c.type, c.key, c.prev) for c in expected]
        finally:
            self.run(watch.close())

    @invariant()
    def count_matches(self) -> None:
        _, n = self.run(self.store.count(self.prefix))
        assert n == len(self.state)


@pytest.mark.parametrize("backend", [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("etcd", id="etcd", marks=pytest.mark.etcd),
])
def test_store_matches_model(backend: str, request: pytest.FixtureRequest) -> None:
    # SQLite: a fresh temporary file per example (memory://), so examples replay exactly.
    url = "" if backend == "sqlite" else request.getfixturevalue("etcd_server")
    machine = type(f"StoreModel_{backend}", (StoreModel,), {"url": url})
    examples = int(os.environ.get("TINYKUBE_STORE_MODEL_EXAMPLES", 0)) or (
        25 if backend == "sqlite" else 15)
    machine.TestCase.settings = settings(
        max_examples=examples, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    machine.TestCase().runTest()
