"""The embedded store: etcd's revisioned model on an SQLite revision log (as kine does).

Layout of the work:

* Writes go through one dedicated writer thread that applies queued writes as a batch in
  one transaction (group commit), so concurrent writers share a commit and an fsync. The
  writer also advances compaction one small window at a time between batches, so a long
  compaction never holds the write lock for long, and deletes keys whose TTL expired.
* Reads run on a small thread pool, each thread with its own connection, each read in one
  transaction (a consistent WAL snapshot). Apart from opening the file (the schema is
  created in the constructor) no SQLite call runs on the event loop.
* WAL checkpoints run on their own thread (PASSIVE, so they never block the writer).
* TTL: a row written with ``lease_ttl`` records when it expires; the writer deletes expired
  keys (conditionally on the expired revision, so two processes never both delete) and
  watchers see ordinary DELETE events. ``KeyValue.lease`` holds the TTL in seconds.
* Watchers in this process are notified directly on commit. Changes committed by OTHER
  processes sharing the file are found by tailing the log by id: the writer thread checks
  ``PRAGMA data_version`` (a cheap, in-memory counter) every ``poll_interval`` seconds while
  idle, and reads the new rows when it changed. This polling is only for foreign changes.

Several processes may open one file: SQLite's write lock serialises their transactions,
revisions come from the AUTOINCREMENT sequence (strictly increasing, never reused), and the
compare-and-swap checks run inside the write transaction, so exactly one of two
conflicting updates wins.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from tinykube.storage import sqllog
from tinykube.storage.sqllog import Row
from tinykube.storage.store import (
    CompactedError,
    ConflictError,
    Event,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    MAX_VALUE_BYTES,
    ListResult,
    StoreError,
    UnavailableError,
    ValueTooLargeError,
)
from tinykube.storage.watchhub import DEFAULT_MAX_BUFFERED_EVENTS, Hub, LogWatch

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 1000
WATCH_PAGE = 1000
#: Compaction deletes in windows sized so that one window holds the write lock ~5 ms.
COMPACT_WINDOW_TARGET = 0.004
COMPACT_WINDOW_MIN, COMPACT_WINDOW_MAX = 16, 512
#: Compaction windows after the first skip their own fsync (see _advance_compaction).
RELAX_COMPACTION_SYNC = True
TTL_SWEEP_INTERVAL = 1.0
#: Rows appended or compacted away between two WAL checkpoints (keeps the WAL short).
CHECKPOINT_EVERY_ROWS = 1000
CHECKPOINT_MIN_INTERVAL = 0.1


@dataclass(slots=True)
class _Write:
    """One queued write; the writer thread fills ``result`` or ``error``."""

    kind: Literal["create", "update", "delete"]
    key: str
    value: bytes | None
    expected: int
    ttl: int
    future: asyncio.Future[Any] | None
    result: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Compaction:
    """A compaction in progress, advanced one window per writer-loop turn."""

    target: int
    low: int
    future: asyncio.Future[None]
    deleted: int = 0
    started: bool = False  # the first window, which records the compacted revision, ran


@dataclass(slots=True)
class _Options:
    path: str
    synchronous: str = "FULL"
    poll_interval: float = 0.01
    busy_timeout: float = 10.0
    readers: int = 4
    temporary: bool = False


_STOP = object()


@dataclass(slots=True)
class StoreStats:
    """Counters of the writer thread (read them for metrics and tests; only it writes them)."""

    commits: int = 0
    writes: int = 0
    compaction_windows: int = 0
    compacted_rows: int = 0
    longest_compaction_window: float = 0.0  # seconds one window held the write lock
    expired_keys: int = 0


class SQLiteStore:
    """A ``Store`` on one SQLite file (see the module docstring for the threading model)."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: str = "FULL",
        poll_interval: float = 0.01,
        readers: int = 4,
        temporary: bool = False,
        max_watch_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
    ):
        """``synchronous`` is SQLite's durability level: FULL (the default) fsyncs every
        group commit; NORMAL survives a crashed process but not a power cut."""
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"invalid synchronous mode {synchronous!r}")
        self._opts = _Options(path, synchronous.upper(), poll_interval, readers=readers,
                              temporary=temporary)
        self._hub = Hub(max_watch_events)
        self.stats = StoreStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._writes: queue.Queue[Any] = queue.Queue()
        self._compactions: list[_Compaction] = []
        self._compaction_lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-read")
        try:
            conn = self._connect()
            sqllog.create_schema(conn)
            self._last_published = sqllog.current_revision(conn)
        except sqlite3.Error as exc:
            self._readers.shutdown(wait=False)
            raise UnavailableError(f"cannot open SQLite store {path!r}: {exc}") from exc
        conn.close()
        self._checkpoint_wanted = threading.Event()
        self._checkpoint_tail_wanted = threading.Event()
        self._writer = threading.Thread(target=self._writer_main, name="sqlite-writer", daemon=True)
        self._checkpointer = threading.Thread(
            target=self._checkpointer_main, name="sqlite-checkpoint", daemon=True
        )
        self._writer_started = False

    # ----- opening -----------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """``sqlite://PATH[?synchronous=NORMAL]`` or ``memory://`` (a temporary file)."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        sync = query.get("synchronous", "FULL")
        if parts.scheme == "memory":
            fd, path = tempfile.mkstemp(prefix="tinykube-", suffix=".db")
            os.close(fd)
            return cls(path, synchronous=query.get("synchronous", "NORMAL"), temporary=True)
        if parts.scheme != "sqlite":
            raise ValueError(f"not an SQLite store URL: {url!r}")
        path = parts.netloc + parts.path
        if not path:
            raise ValueError(f"SQLite store URL needs a path: {url!r}")
        return cls(path, synchronous=sync)

    @property
    def path(self) -> str:
        return self._opts.path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._opts.path, timeout=self._opts.busy_timeout, check_same_thread=False
        )
        sqllog.configure(conn, self._opts.synchronous)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise UnavailableError("store is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("an SQLiteStore is bound to the event loop that first used it")
        if not self._writer_started:
            self._writer_started = True
            self._writer.start()
            self._checkpointer.start()
        return loop

    # ----- reads ------------------------------------------------------------------------

    def _reader_conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _in_read_txn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._reader_conn()
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = self._ensure_started()
        try:
            return await loop.run_in_executor(self._readers, self._in_read_txn, fn)
        except sqlite3.Error as exc:
            raise UnavailableError(f"sqlite read failed: {exc}") from exc
        except RuntimeError as exc:  # executor shut down by close()
            if self._closed:
                raise UnavailableError("store is closed") from exc
            raise

    @staticmethod
    def _read_revision(conn: sqlite3.Connection, revision: int | None) -> int:
        """The revision a read is served at, or CompactedError/FutureRevisionError."""
        current = sqllog.current_revision(conn)
        if not revision:
            return current
        if revision > current:
            raise FutureRevisionError(revision, current)
        compacted = sqllog.compact_revision(conn)
        if revision < compacted:
            raise CompactedError(revision, compacted)
        return revision

    async def current_revision(self) -> int:
        return await self._read(sqllog.current_revision)

    async def get(self, key: str, revision: int | None = None) -> tuple[int, KeyValue | None]:
        def read(conn: sqlite3.Connection) -> tuple[int, KeyValue | None]:
            rev = self._read_revision(conn, revision)
            row = sqllog.latest_row(conn, key, rev)
            return rev, (row.kv() if row is not None and not row.deleted else None)

        return await self._read(read)

    async def list(
        self,
        prefix: str,
        revision: int | None = None,
        limit: int = 0,
        start_after: str | None = None,
    ) -> ListResult:
        if limit < 0:
            raise ValueError("limit must not be negative")

        def read(conn: sqlite3.Connection) -> ListResult:
            rev = self._read_revision(conn, revision)
            items, more = sqllog.list_live(conn, prefix, rev, limit, start_after)
            return ListResult(items, rev, more)

        return await self._read(read)

    async def count(self, prefix: str) -> tuple[int, int]:
        def read(conn: sqlite3.Connection) -> tuple[int, int]:
            return sqllog.current_revision(conn), sqllog.count_live(conn, prefix)

        return await self._read(read)

    # ----- writes -----------------------------------------------------------------------

    async def _submit(self, write: _Write) -> Any:
        loop = self._ensure_started()
        if write.value is not None and len(write.value) > MAX_VALUE_BYTES:
            raise ValueTooLargeError(write.key, len(write.value))
        write.future = loop.create_future()
        self._writes.put(write)
        return await write.future

    async def create(self, key: str, value: bytes, lease_ttl: int = 0) -> int:
        return await self._submit(_Write("create", key, bytes(value), 0, lease_ttl, None))

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int, lease_ttl: int = 0
    ) -> int:
        return await self._submit(
            _Write("update", key, bytes(value), expected_mod_revision, lease_ttl, None)
        )

    async def delete(self, key: str, expected_mod_revision: int = 0) -> tuple[int, KeyValue]:
        return await self._submit(_Write("delete", key, None, expected_mod_revision, 0, None))

    async def compact(self, revision: int) -> None:
        def check(conn: sqlite3.Connection) -> int:
            current = sqllog.current_revision(conn)
            if revision > current:
                raise FutureRevisionError(revision, current)
            compacted = sqllog.compact_revision(conn)
            if revision <= compacted:
                raise CompactedError(revision, compacted)
            return compacted

        low = await self._read(check)
        loop = self._ensure_started()
        job = _Compaction(revision, low, loop.create_future())
        with self._compaction_lock:
            self._compactions.append(job)
        self._writes.put(None)  # wake the writer
        await job.future

    # ----- watch ------------------------------------------------------------------------

    def watch(self, prefix: str, after_revision: int) -> LogWatch:
        if self._closed:
            raise UnavailableError("store is closed")

        async def read_page(after: int) -> tuple[list[Event], bool]:
            def read(conn: sqlite3.Connection) -> tuple[list[Event], bool]:
                compacted = sqllog.compact_revision(conn)
                if after < compacted:
                    raise CompactedError(after, compacted)
                rows = sqllog.rows_after(conn, after, WATCH_PAGE, prefix)
                return [r.event() for r in rows], len(rows) == WATCH_PAGE

            return await self._read(read)

        return LogWatch(self._hub, prefix, after_revision, read_page)

    # ----- the writer thread ------------------------------------------------------------

    def _writer_main(self) -> None:
        conn = self._connect()
        state = _WriterState(conn, self._last_published)
        try:
            self._writer_loop(state)
        finally:
            self._fail_pending(UnavailableError("store is closed"))

    def _writer_loop(self, state: _WriterState) -> None:
        poll = self._opts.poll_interval
        while True:
            busy = self._compaction_pending()
            try:
                first = self._writes.get(timeout=0 if busy else poll)
            except queue.Empty:
                first = None
            batch, stop = self._drain(first)
            try:
                self._writer_turn(state, batch)
            except Exception as exc:  # a bug must not leave writers waiting forever
                log.exception("sqlite store: writer thread failed")
                self._finish(state, batch, [], UnavailableError(f"sqlite writer failed: {exc}"))
            if stop:
                return

    def _writer_turn(self, state: _WriterState, batch: list[_Write]) -> None:
        """One turn: the batch, one compaction window, TTL expiry, then foreign changes."""
        if self._checkpoint_tail_wanted.is_set():
            self._checkpoint_tail(state)
        if batch:
            self._apply_batch(state, batch)
        self._advance_compaction(state)
        self._sweep_expired(state)
        if not batch:
            self._tail_foreign(state)

    def _drain(self, first: Any) -> tuple[list[_Write], bool]:
        batch: list[_Write] = []
        stop = first is _STOP
        if isinstance(first, _Write):
            batch.append(first)
        while not stop and len(batch) < MAX_BATCH:
            try:
                item = self._writes.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
            elif isinstance(item, _Write):
                batch.append(item)
        return batch, stop

    def _apply_batch(self, state: _WriterState, batch: list[_Write]) -> None:
        conn = state.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._finish(state, batch, [], UnavailableError(f"sqlite: cannot begin write: {exc}"))
            return
        rows: list[Row] = []
        try:
            next_id = sqllog.current_revision(conn) + 1
            for write in batch:
                row = self._apply_one(conn, write, next_id)
                if row is not None:
                    rows.append(row)
                    next_id += 1
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._finish(state, batch, [], UnavailableError(f"sqlite write failed: {exc}"))
            return
        self.stats.commits += 1
        self.stats.writes += len(batch)
        for write in batch:
            if write.ttl > 0 and write.error is None:
                state.next_sweep = min(state.next_sweep, time.time() + write.ttl)
        self._finish(state, batch, rows, None)

    @staticmethod
    def _apply_one(conn: sqlite3.Connection, write: _Write, rev: int) -> Row | None:
        """Apply one write inside the open transaction; sets its result or error."""
        head = sqllog.latest_row(conn, write.key)
        live = head if head is not None and not head.deleted else None
        try:
            row = _plan(write, live, head, rev)
        except StoreError as exc:
            write.error = exc
            return None
        expires = time.time() + write.ttl if write.ttl > 0 else None
        try:
            conn.execute(
                "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision,"
                " lease, value, old_value, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.id, row.name, row.created, row.deleted, row.create_revision,
                 row.prev_revision, row.lease, row.value, row.old_value, expires),
            )
        except sqlite3.IntegrityError:
            write.error = ConflictError(write.key, live.kv() if live else None)
            return None
        write.result = rev if write.kind != "delete" else (rev, live.kv() if live else None)
        return row

    def _finish(
        self, state: _WriterState, batch: list[_Write], rows: list[Row], error: StoreError | None
    ) -> None:
        """Publish committed rows (after any foreign rows before them) and resolve futures."""
        events: list[Event] = []
        gap_error: StoreError | None = None
        if rows:
            if rows[0].id > state.published + 1:
                foreign, gap_error = self._read_gap(state, rows[0].id - 1)
                events.extend(r.event() for r in foreign)
            events.extend(r.event() for r in rows)
            state.published = rows[-1].id
            self._dirtied(state, len(rows))
        if error is not None:
            for write in batch:
                write.error = error
        self._post(events, batch, gap_error)

    def _dirtied(self, state: _WriterState, rows: int) -> None:
        """Count rows touched; past a threshold, ask the checkpointer to copy the WAL back."""
        state.rows_since_checkpoint += rows
        now = time.monotonic()
        if (state.rows_since_checkpoint >= CHECKPOINT_EVERY_ROWS
                and now - state.last_checkpoint >= CHECKPOINT_MIN_INTERVAL):
            state.rows_since_checkpoint = 0
            state.last_checkpoint = now
            self._checkpoint_wanted.set()

    def _read_gap(self, state: _WriterState, until: int) -> tuple[list[Row], StoreError | None]:
        """Rows other processes committed after our last published one, up to ``until``."""
        rows: list[Row] = []
        after = state.published
        while after < until:
            page = sqllog.rows_after(state.conn, after, WATCH_PAGE, until=until)
            if not page:
                break
            rows.extend(page)
            after = page[-1].id
        expected = until - state.published
        if len(rows) != expected:
            compacted = sqllog.compact_revision(state.conn)
            return rows, CompactedError(state.published, compacted)
        return rows, None

    def _tail_foreign(self, state: _WriterState) -> None:
        try:
            version = state.conn.execute("PRAGMA data_version").fetchone()[0]
            if version == state.data_version:
                return
            state.data_version = version
            current = sqllog.current_revision(state.conn)
            if current <= state.published:
                return
            rows, gap_error = self._read_gap(state, current)
        except sqlite3.Error as exc:
            log.warning("sqlite store: tailing the log failed: %s", exc)
            return
        state.published = current
        self._post([r.event() for r in rows], [], gap_error)

    def _sweep_expired(self, state: _WriterState) -> None:
        """Delete keys whose TTL passed (each delete conditional on the expired revision)."""
        now = time.time()
        if now < state.next_sweep:
            return
        try:
            heads = sqllog.expired_heads(state.conn, now, MAX_BATCH)
            upcoming = sqllog.next_expiry(state.conn)
        except sqlite3.Error as exc:
            log.warning("sqlite store: TTL sweep failed: %s", exc)
            state.next_sweep = now + TTL_SWEEP_INTERVAL
            return
        state.next_sweep = now + TTL_SWEEP_INTERVAL
        if upcoming is not None and upcoming > now:
            state.next_sweep = min(state.next_sweep, upcoming)
        if heads:
            expiries = [_Write("delete", name, None, rev, 0, None) for rev, name in heads]
            self._apply_batch(state, expiries)
            self.stats.expired_keys += sum(1 for w in expiries if w.error is None)
            if len(heads) == MAX_BATCH:
                state.next_sweep = now

    def _compaction_pending(self) -> bool:
        with self._compaction_lock:
            return bool(self._compactions)

    def _advance_compaction(self, state: _WriterState) -> None:
        """Run one compaction window (a short write transaction) if a compaction is queued.

        Only the first window, which records the compacted revision, is fsynced on its
        own; later windows ride on the next write's fsync (WAL frames are synced in
        order). Losing them to a power cut only leaves history a later compaction removes.
        """
        with self._compaction_lock:
            job = self._compactions[0] if self._compactions else None
        if job is None:
            return
        conn = state.conn
        error: StoreError | None = None
        relaxed = (RELAX_COMPACTION_SYNC and job.started
                   and self._opts.synchronous in ("FULL", "EXTRA"))
        try:
            if relaxed:
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            locked = time.perf_counter()
            try:
                if not job.started:
                    sqllog.set_compact_revision(conn, job.target)
                high = min(job.low + self._window_size(state), job.target)
                started = time.perf_counter()
                removed = sqllog.compact_window(conn, job.low, high)
                elapsed = time.perf_counter() - started
                conn.execute("COMMIT")
                held = time.perf_counter() - locked
                self.stats.longest_compaction_window = max(
                    self.stats.longest_compaction_window, held)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                if relaxed:
                    conn.execute(f"PRAGMA synchronous={self._opts.synchronous}")
            job.started = True
            job.low = high
            job.deleted += removed
            self.stats.compaction_windows += 1
            self.stats.compacted_rows += removed
            self._dirtied(state, removed)
            state.compact_window = _next_window(state.compact_window, elapsed)
        except sqlite3.Error as exc:
            error = UnavailableError(f"sqlite compaction failed: {exc}")
        if error is None and job.low < job.target:
            return
        with self._compaction_lock:
            self._compactions.pop(0)
        self._checkpoint_wanted.set()
        self._post_compaction(job, error)

    def _window_size(self, state: _WriterState) -> int:
        """The adaptive window, a quarter of it while writes are waiting for the lock."""
        if self._writes.empty():
            return state.compact_window
        return max(COMPACT_WINDOW_MIN, state.compact_window // 4)

    # ----- handing results to the loop --------------------------------------------------

    def _post(self, events: list[Event], batch: list[_Write], gap_error: StoreError | None) -> None:
        if self._loop is None or (not events and not batch and gap_error is None):
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, events, batch, gap_error)
        except RuntimeError:
            log.warning("sqlite store: event loop closed before results could be delivered")

    def _deliver(self, events: list[Event], batch: list[_Write], gap_error: StoreError | None) -> None:
        """On the loop: publish to watchers first, then acknowledge the writers."""
        self._hub.publish(events)
        if gap_error is not None:
            self._hub.fail_all(gap_error)
        for write in batch:
            fut = write.future
            if fut is None or fut.done():
                continue
            if write.error is not None:
                fut.set_exception(write.error)
            else:
                fut.set_result(write.result)

    def _post_compaction(self, job: _Compaction, error: StoreError | None) -> None:
        def resolve() -> None:
            if job.future.done():
                return
            if error is None:
                job.future.set_result(None)
            else:
                job.future.set_exception(error)

        if self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(resolve)
            except RuntimeError:
                log.warning("sqlite store: event loop closed before compaction finished")

    def _fail_pending(self, error: StoreError) -> None:
        batch: list[_Write] = []
        while True:
            try:
                item = self._writes.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Write):
                item.error = error
                batch.append(item)
        self._post([], batch, None)
        with self._compaction_lock:
            jobs, self._compactions = self._compactions, []
        for job in jobs:
            self._post_compaction(job, error)

    # ----- checkpointing ----------------------------------------------------------------

    def _checkpointer_main(self) -> None:
        """Copy the WAL back into the database off the writer thread (PASSIVE: no blocking).

        Under steady writes a background checkpoint never quite catches up, and SQLite only
        restarts (and truncates) the WAL when a write begins with the WAL fully copied. So
        this thread copies the bulk, then asks the writer to copy the last few frames
        itself between two batches, which lets the next write restart the WAL.
        """
        conn: sqlite3.Connection | None = None
        while True:
            self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()
            if self._closed:
                return
            try:
                if conn is None:
                    conn = self._connect()
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                log.warning("sqlite store: checkpoint failed: %s", exc)
                continue
            self._checkpoint_tail_wanted.set()

    def _checkpoint_tail(self, state: _WriterState) -> None:
        """On the writer thread: copy the frames written since the background checkpoint."""
        self._checkpoint_tail_wanted.clear()
        try:
            state.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("sqlite store: checkpoint failed: %s", exc)

    # ----- closing ----------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._writes.put(_STOP)
        self._checkpoint_wanted.set()
        loop = asyncio.get_running_loop()
        if self._writer_started:
            await loop.run_in_executor(None, self._join_threads)
        self._hub.fail_all(UnavailableError("store is closed"))
        self._readers.shutdown(wait=True)
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        await asyncio.sleep(0)  # let the writer's last callbacks run before we return
        if self._opts.temporary:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(self._opts.path + suffix)
                except FileNotFoundError:
                    pass

    def _join_threads(self) -> None:
        self._writer.join()
        self._checkpointer.join()


@dataclass(slots=True)
class _WriterState:
    """What only the writer thread touches."""

    conn: sqlite3.Connection
    published: int
    data_version: int = -1
    next_sweep: float = 0.0
    rows_since_checkpoint: int = 0
    compact_window: int = 256
    last_checkpoint: float = 0.0


def _next_window(window: int, elapsed: float) -> int:
    """Resize the compaction window toward the target duration (at most doubling a step)."""
    scaled = int(window * COMPACT_WINDOW_TARGET / max(elapsed, 1e-4))
    return max(COMPACT_WINDOW_MIN, min(COMPACT_WINDOW_MAX, 2 * window, scaled))


def _plan(write: _Write, live: Row | None, head: Row | None, rev: int) -> Row:
    """The row a write appends, given the key's newest row; raises the expected errors."""
    if write.kind == "create":
        if live is not None:
            raise KeyExistsError(write.key)
        return Row(rev, write.key, 1, 0, rev, head.id if head else 0, write.ttl, write.value,
                   None)
    if live is None:
        raise KeyNotFoundError(write.key)
    if write.expected and live.id != write.expected:
        raise ConflictError(write.key, live.kv())
    if write.kind == "update":
        return Row(rev, write.key, 0, 0, live.create_revision, live.id, write.ttl, write.value,
                   live.value)
    return Row(rev, write.key, 0, 1, live.create_revision, live.id, live.lease, None, live.value)
