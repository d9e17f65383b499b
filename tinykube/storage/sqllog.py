"""The revision log in SQL: schema, queries and row decoding for the SQLite backend.

The table is append-only, one row per revision (as kine keeps it): ``id`` is the revision,
``created``/``deleted`` mark a create or a tombstone, ``prev_revision`` points at the key's
previous row and ``old_value`` holds the value that row replaced, so a watch can deliver
``prev_kv`` without a second read. The unique index on ``(name, prev_revision)`` is the
compare-and-swap guard: two writers that both saw revision N of a key cannot both append
its successor. ``expires_at`` (wall clock seconds) is set on rows written with a TTL.

Everything here is plain synchronous sqlite3 on a connection the caller owns; threading is
the store's business.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tinykube.storage.store import Event, KeyValue

SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    create_revision INTEGER NOT NULL DEFAULT 0,
    prev_revision INTEGER NOT NULL DEFAULT 0,
    lease INTEGER NOT NULL DEFAULT 0,
    value BLOB,
    old_value BLOB,
    expires_at REAL
);
CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision);
CREATE INDEX IF NOT EXISTS kine_expires_index ON kine (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS kine_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

ROW_COLUMNS = "id, name, created, deleted, create_revision, prev_revision, lease, value, old_value"


@dataclass(frozen=True, slots=True)
class Row:
    """One revision of the log, as stored."""

    id: int
    name: str
    created: int
    deleted: int
    create_revision: int
    prev_revision: int
    lease: int
    value: bytes | None
    old_value: bytes | None

    def kv(self) -> KeyValue:
        """The key's value as this row left it (a tombstone has an empty value)."""
        if self.deleted:
            return KeyValue(self.name, b"", 0, self.id, 0)
        return KeyValue(self.name, self.value or b"", self.create_revision, self.id, self.lease)

    def event(self) -> Event:
        """The change this row records, with the previous value for updates and deletes."""
        prev = None
        if not self.created:
            prev = KeyValue(
                self.name, self.old_value or b"", self.create_revision, self.prev_revision,
                self.lease if self.deleted else 0,
            )
        return Event("DELETE" if self.deleted else "PUT", self.kv(), prev)


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` (None: no bound)."""
    if not prefix:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def configure(conn: sqlite3.Connection, synchronous: str) -> None:
    """Per-connection settings: WAL, durability level, and no implicit transactions."""
    conn.isolation_level = None
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA journal_size_limit=67108864")  # truncate the WAL back to 64 MiB


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables and indexes if missing (safe to run from several processes)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def current_revision(conn: sqlite3.Connection) -> int:
    """The newest revision ever written; monotonic even after its row is compacted away."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kine'").fetchone()
    return int(row[0]) if row else 0


def compact_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM kine_meta WHERE key = 'compact_revision'").fetchone()
    return int(row[0]) if row else 0


def set_compact_revision(conn: sqlite3.Connection, revision: int) -> None:
    conn.execute(
        "INSERT INTO kine_meta (key, value) VALUES ('compact_revision', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
        (revision,),
    )


def latest_row(conn: sqlite3.Connection, name: str, revision: int | None = None) -> Row | None:
    """The newest row of ``name`` (at or below ``revision``), tombstones included."""
    if revision is None:
        cur = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1", (name,)
        )
    else:
        cur = conn.execute(
            f"SELECT {ROW_COLUMNS} FROM kine WHERE name = ? AND id <= ? ORDER BY id DESC LIMIT 1",
            (name, revision),
        )
    found = cur.fetchone()
    return Row(*found) if found else None


def _range_clause(prefix: str, start_after: str | None) -> tuple[str, list[object]]:
    clauses = ["name >= ?"]
    params: list[object] = [prefix]
    end = prefix_end(prefix)
    if end is not None:
        clauses.append("name < ?")
        params.append(end)
    if start_after is not None:
        clauses.append("name > ?")
        params.append(start_after)
    return " AND ".join(clauses), params


def list_live(
    conn: sqlite3.Connection, prefix: str, revision: int, limit: int, start_after: str | None
) -> tuple[list[KeyValue], bool]:
    """Live keys under ``prefix`` as of ``revision`` in key order; (items, more).

    Walks the (name, id) index in key order and keeps a row when no newer row of its key
    exists at ``revision``, so a page with a limit stops early instead of grouping the
    whole rest of the range first.
    """
    where, params = _range_clause(prefix, start_after)
    where = where.replace("name", "k.name")
    sql = (
        f"SELECT k.name, k.value, k.create_revision, k.id, k.lease"
        f" FROM kine k INDEXED BY kine_name_id_index"
        f" WHERE {where} AND k.id <= ? AND k.deleted = 0 AND NOT EXISTS"
        f" (SELECT 1 FROM kine n WHERE n.name = k.name AND n.id > k.id AND n.id <= ?)"
        f" ORDER BY k.name"
    )
    params.extend((revision, revision))
    if limit > 0:
        sql += " LIMIT ?"
        params.append(limit + 1)
    rows = conn.execute(sql, params).fetchall()
    more = limit > 0 and len(rows) > limit
    if more:
        rows = rows[:limit]
    return [KeyValue(*row) for row in rows], more


def count_live(conn: sqlite3.Connection, prefix: str) -> int:
    where, params = _range_clause(prefix, None)
    sql = (
        f"SELECT COUNT(*) FROM kine k JOIN "
        f"(SELECT MAX(id) AS mid FROM kine WHERE {where} GROUP BY name) m "
        f"ON k.id = m.mid WHERE k.deleted = 0"
    )
    return int(conn.execute(sql, params).fetchone()[0])


def rows_after(
    conn: sqlite3.Connection, after: int, limit: int, prefix: str = "", until: int | None = None
) -> list[Row]:
    """Rows with id > ``after`` (and <= ``until``) under ``prefix``, in revision order."""
    clauses = ["id > ?"]
    params: list[object] = [after]
    if until is not None:
        clauses.append("id <= ?")
        params.append(until)
    if prefix:
        where, extra = _range_clause(prefix, None)
        clauses.append(where)
        params.extend(extra)
    params.append(limit)
    # Walk revisions forward (rowid range), never the name index plus a sort: a watch
    # on "/registry/" from a recent revision must not sort every key of the cluster.
    sql = (f"SELECT {ROW_COLUMNS} FROM kine NOT INDEXED WHERE {' AND '.join(clauses)}"
           f" ORDER BY id LIMIT ?")
    return [Row(*r) for r in conn.execute(sql, params).fetchall()]


def insert_row(
    conn: sqlite3.Connection,
    name: str,
    *,
    created: bool,
    deleted: bool,
    create_revision: int,
    prev_revision: int,
    lease: int,
    value: bytes | None,
    old_value: bytes | None,
    expires_at: float | None,
) -> int:
    """Append one revision; returns its id. A create fills in its own create_revision."""
    cur = conn.execute(
        "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value,"
        " old_value, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (name, int(created), int(deleted), create_revision, prev_revision, lease, value,
         old_value, expires_at),
    )
    rid = int(cur.lastrowid or 0)
    if created:
        conn.execute("UPDATE kine SET create_revision = ? WHERE id = ?", (rid, rid))
    return rid


def expired_heads(conn: sqlite3.Connection, now: float, limit: int) -> list[tuple[int, str]]:
    """(revision, key) of live keys whose newest row has expired."""
    return conn.execute(
        "SELECT k.id, k.name FROM kine k WHERE k.expires_at IS NOT NULL AND k.expires_at <= ?"
        " AND k.deleted = 0 AND NOT EXISTS (SELECT 1 FROM kine n WHERE n.name = k.name"
        " AND n.id > k.id) LIMIT ?",
        (now, limit),
    ).fetchall()


def next_expiry(conn: sqlite3.Connection) -> float | None:
    row = conn.execute(
        "SELECT MIN(expires_at) FROM kine WHERE expires_at IS NOT NULL AND deleted = 0"
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def compact_window(conn: sqlite3.Connection, low: int, high: int) -> int:
    """Compaction's share of the revisions in (low, high]: returns rows deleted.

    Compacting to T removes every row at or below T that is a tombstone or has a successor
    at or below T. Walking T's new range (old compaction, T] window by window, a row's
    successor lies in exactly one window, so deleting each window's predecessors
    (``prev_revision``) and tombstones removes exactly those rows, including rows an
    earlier compaction kept because their successor came later. Example: create@1,
    update@2, delete@3, compact(2) removes 1; compact(3) then removes 2 (predecessor of 3)
    and 3 (a tombstone).
    """
    deleted = conn.execute(
        "DELETE FROM kine WHERE id IN (SELECT prev_revision FROM kine"
        " WHERE id > ? AND id <= ? AND prev_revision > 0)",
        (low, high),
    ).rowcount
    deleted += conn.execute(
        "DELETE FROM kine WHERE id > ? AND id <= ? AND deleted = 1", (low, high)
    ).rowcount
    return deleted
