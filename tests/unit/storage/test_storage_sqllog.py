"""The SQL revision log on an in-memory database: writes, reads at revisions, compaction."""

from __future__ import annotations

import sqlite3

import pytest

from tinykube.storage import sqllog
from tinykube.storage.sqlite import _next_window, _plan, _Write, COMPACT_WINDOW_MAX
from tinykube.storage.store import ConflictError, KeyExistsError, KeyNotFoundError


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", isolation_level=None)
    for statement in sqllog.SCHEMA.split(";"):
        if statement.strip():
            c.execute(statement)
    return c


def write(conn: sqlite3.Connection, kind: str, key: str, value: bytes | None = None,
          expected: int = 0) -> sqllog.Row:
    """What the writer thread does for one write: plan against the head, then append."""
    head = sqllog.latest_row(conn, key)
    live = head if head is not None and not head.deleted else None
    row = _plan(_Write(kind, key, value, expected, 0, None), live, head,  # type: ignore[arg-type]
                sqllog.current_revision(conn) + 1)
    conn.execute(
        "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, lease,"
        " value, old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row.id, row.name, row.created, row.deleted, row.create_revision, row.prev_revision,
         row.lease, row.value, row.old_value))
    return row


def live_ids(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM kine ORDER BY id")]


def test_prefix_end() -> None:
    assert sqllog.prefix_end("/registry/pods/") == "/registry/pods0"
    assert sqllog.prefix_end("") is None


def test_plan_errors(conn: sqlite3.Connection) -> None:
    write(conn, "create", "/a", b"1")
    with pytest.raises(KeyExistsError):
        write(conn, "create", "/a", b"2")
    with pytest.raises(ConflictError) as err:
        write(conn, "update", "/a", b"2", expected=7)
    assert err.value.current is not None and err.value.current.mod_revision == 1
    with pytest.raises(KeyNotFoundError):
        write(conn, "delete", "/missing")


def test_events_carry_previous_values(conn: sqlite3.Connection) -> None:
    created = write(conn, "create", "/a", b"1").event()
    updated = write(conn, "update", "/a", b"2", expected=1).event()
    deleted = write(conn, "delete", "/a").event()
    recreated = write(conn, "create", "/a", b"3").event()
    assert created.is_create and created.kv.create_revision == 1
    assert updated.prev_kv is not None and (updated.prev_kv.value, updated.prev_kv.mod_revision) == (b"1", 1)
    assert deleted.type == "DELETE" and deleted.kv.value == b"" and deleted.prev_kv.value == b"2"
    assert recreated.is_create and recreated.kv.create_revision == 4


def test_list_at_revision_and_pagination(conn: sqlite3.Connection) -> None:
    for key in ["/p/b", "/p/a", "/p/c", "/q/a"]:
        write(conn, "create", key, key.encode())
    write(conn, "delete", "/p/b")
    items, more = sqllog.list_live(conn, "/p/", 4, 0, None)
    assert [kv.key for kv in items] == ["/p/a", "/p/b", "/p/c"] and not more
    items, more = sqllog.list_live(conn, "/p/", 5, 1, None)
    assert [kv.key for kv in items] == ["/p/a"] and more
    items, more = sqllog.list_live(conn, "/p/", 5, 1, "/p/a")
    assert [kv.key for kv in items] == ["/p/c"] and not more
    assert sqllog.count_live(conn, "/p/") == 2


def test_compaction_worked_example(conn: sqlite3.Connection) -> None:
    # create@1 update@2 delete@3 of /a; create@4 update@5 of /b
    write(conn, "create", "/a", b"1")
    write(conn, "update", "/a", b"2")
    write(conn, "delete", "/a")
    write(conn, "create", "/b", b"1")
    write(conn, "update", "/b", b"2")
    assert sqllog.compact_window(conn, 0, 2) == 1  # compact(2): 1 is superseded by 2
    assert live_ids(conn) == [2, 3, 4, 5]
    # compact(4) in two windows: 2 (predecessor of 3) and tombstone 3 go; 4 is /b's newest at 4
    removed = sqllog.compact_window(conn, 2, 3) + sqllog.compact_window(conn, 3, 4)
    assert removed == 2 and live_ids(conn) == [4, 5]
    assert sqllog.compact_window(conn, 4, 5) == 1 and live_ids(conn) == [5]
    assert sqllog.latest_row(conn, "/a") is None
    # A recreated key starts a fresh chain without violating (name, prev_revision).
    write(conn, "create", "/a", b"again")
    assert sqllog.latest_row(conn, "/a").value == b"again"


def test_current_revision_survives_compacting_the_newest_row(conn: sqlite3.Connection) -> None:
    write(conn, "create", "/a", b"1")
    write(conn, "delete", "/a")
    sqllog.compact_window(conn, 0, 2)
    assert live_ids(conn) == []
    assert sqllog.current_revision(conn) == 2


def test_compaction_window_adapts() -> None:
    assert _next_window(256, 0.001) == 512          # fast: grows, at most doubling
    assert _next_window(512, 0.0001) == COMPACT_WINDOW_MAX
    assert _next_window(256, 0.016) == 64           # slow: shrinks toward the target
    assert _next_window(16, 1.0) == 16              # never below the minimum
