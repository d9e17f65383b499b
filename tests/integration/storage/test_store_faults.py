"""Faults: crashed writers, several processes on one SQLite file, etcd going away."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from tinykube.storage.sqlite import SQLiteStore
from tinykube.storage.store import UnavailableError, open_store
from tinykube.testing.etcd import EtcdServer, etcd_available
from tinykube.testing.store import collect_until

WORKER = str(Path(__file__).with_name("storage_worker.py"))


class Worker:
    """A storage_worker.py process whose output lines are read with a bounded wait."""

    def __init__(self, *args: str, stdin: bool = False):
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, *args], stdout=subprocess.PIPE, text=True,
            stdin=subprocess.PIPE if stdin else None,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def line(self, timeout: float = 20.0) -> str:
        got = self.lines.get(timeout=timeout)
        assert got is not None, "worker exited early"
        return got

    def rest(self) -> list[str]:
        """Every line still to come, once the process has exited."""
        self._reader.join(timeout=10)
        out = []
        while (got := self.lines.get_nowait()) is not None:
            out.append(got)
        return out

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill()
        self._reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stdin):
            if stream is not None:
                stream.close()


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    procs: list[Worker] = []
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def parse_acks(lines: list[str]) -> dict[str, int]:
    acks = {}
    for line in lines:
        kind, key, rev = line.split()
        assert kind == "ack"
        acks[key] = int(rev)
    return acks


async def test_sigkill_loses_no_acknowledged_write(tmp_path: Path, workers: list) -> None:
    url = f"sqlite://{tmp_path / 'crash.db'}"
    proc = Worker("write", url, "/registry/crash/", "1000000", "50")
    workers.append(proc)
    lines = [proc.line() for _ in range(3000)]
    proc.kill()
    lines.extend(line for line in proc.rest() if line.startswith("ack "))
    acks = parse_acks(lines)
    assert len(acks) >= 3000
    store = SQLiteStore.from_url(url)
    try:
        for key, rev in acks.items():
            _, kv = await store.get(key)
            assert kv is not None, f"acknowledged write {key}@{rev} lost"
            assert kv.mod_revision == rev
        result = await store.list("/registry/crash/")
        revisions = sorted(kv.mod_revision for kv in result.items)
        assert len(set(revisions)) == len(revisions)
    finally:
        await store.close()


async def test_conflicting_updates_from_two_processes(tmp_path: Path, workers: list) -> None:
    url = f"sqlite://{tmp_path / 'conflict.db'}"
    store = open_store(url)
    rev = await store.create("/registry/race/x", b"0")
    await store.close()
    a = Worker("update", url, "/registry/race/x", stdin=True)
    b = Worker("update", url, "/registry/race/x", stdin=True)
    workers.extend([a, b])
    for _ in range(30):
        for proc in (a, b):
            proc.send(str(rev))
        results = [proc.line().split() for proc in (a, b)]
        outcomes = sorted(kind for kind, _ in results)
        assert outcomes == ["conflict", "ok"], results
        winner = int(next(r for kind, r in results if kind == "ok"))
        loser_saw = int(next(r for kind, r in results if kind == "conflict"))
        assert winner > rev and loser_saw == winner
        rev = winner


async def test_two_writer_processes_and_a_watcher_process(tmp_path: Path, workers: list) -> None:
    url = f"sqlite://{tmp_path / 'shared.db'}"
    store = open_store(url)
    start = await store.create("/registry/shared/start", b"{}")
    await store.close()
    per_writer = 300
    watcher = Worker("watch", url, "/registry/shared/w", str(start), str(2 * per_writer))
    workers.append(watcher)
    assert watcher.line() == "ready"
    writers = [Worker("write", url, f"/registry/shared/w{n}-", str(per_writer), "20")
               for n in range(2)]
    workers.extend(writers)
    acks: dict[str, int] = {}
    for proc in writers:
        mine = parse_acks([proc.line() for _ in range(per_writer)])
        by_rev = sorted(mine.values())
        assert len(set(by_rev)) == per_writer
        acks.update(mine)
    assert len(set(acks.values())) == 2 * per_writer, "two processes got the same revision"
    seen = [watcher.line().split() for _ in range(2 * per_writer)]
    revisions = [int(rev) for _, rev, _, _ in seen]
    assert revisions == sorted(acks.values()), "watcher missed, repeated or reordered events"
    assert {key: int(rev) for _, rev, _, key in seen} == acks


async def test_watch_in_other_process_store_sees_foreign_writes(tmp_path: Path,
                                                               workers: list) -> None:
    url = f"sqlite://{tmp_path / 'tail.db'}"
    store = open_store(url)
    try:
        start = await store.current_revision()
        watch = store.watch("/registry/tail/", start)
        proc = Worker("write", url, "/registry/tail/", "100", "5")
        workers.append(proc)
        acks = parse_acks([proc.line() for _ in range(100)])
        events = await collect_until(watch, max(acks.values()))
        assert [e.revision for e in events] == sorted(acks.values())
        await watch.close()
    finally:
        await store.close()


@pytest.mark.etcd
@pytest.mark.skipif(not etcd_available(), reason="etcd binary not installed")
async def test_etcd_down_fails_fast_and_recovers() -> None:
    server = EtcdServer()
    server.start()
    store = open_store(server.url + "?timeout=2")
    try:
        rev = await store.create("/registry/outage/a", b"1")
        watch = store.watch("/registry/outage/", rev)
        r2 = await store.update("/registry/outage/a", b"2", rev)
        assert [e.revision for e in await collect_until(watch, r2)] == [r2]
        server.stop()
        began = time.monotonic()
        with pytest.raises(UnavailableError) as err:
            await store.get("/registry/outage/a")
        assert time.monotonic() - began < 2.5
        assert "etcd" in str(err.value) and "unavailable" in str(err.value)
        with pytest.raises(UnavailableError):
            await asyncio.wait_for(watch.__anext__(), 5)
        with pytest.raises(UnavailableError):
            await store.create("/registry/outage/b", b"1")
        server.start()
        # No event says "etcd is back": retry a read within a bounded time.
        deadline = time.monotonic() + 15
        while True:
            try:
                _, kv = await store.get("/registry/outage/a")
                break
            except UnavailableError:
                assert time.monotonic() < deadline, "store did not recover after etcd restarted"
                await asyncio.sleep(0.1)
        assert kv is not None and kv.value == b"2" and kv.mod_revision == r2
        again = store.watch("/registry/outage/", r2)
        r3 = await store.create("/registry/outage/b", b"1")
        assert [e.revision for e in await collect_until(again, r3)] == [r3]
        await again.close()
    finally:
        await store.close()
        server.cleanup()
