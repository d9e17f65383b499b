"""A separate process driving an SQLite store, for the multi-process and crash tests.

Usage (one line of output per acknowledged result, flushed at once):
  write URL PREFIX COUNT CONCURRENCY   creates PREFIX0..N-1; prints "ack KEY REVISION"
  update URL KEY                       per stdin line "EXPECTED": "ok REV" | "conflict REV"
  watch URL PREFIX AFTER COUNT         prints "ready", then "event REV TYPE KEY" per event
"""

from __future__ import annotations

import asyncio
import os
import sys

from tinykube.storage.store import ConflictError, open_store


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def write(url: str, prefix: str, count: int, concurrency: int) -> None:
    store = open_store(url)
    keys = iter(range(count))

    async def writer() -> None:
        for i in keys:
            key = f"{prefix}{i}"
            rev = await store.create(key, f'{{"n":{i},"pid":{os.getpid()}}}'.encode())
            emit(f"ack {key} {rev}")

    await asyncio.gather(*[writer() for _ in range(concurrency)])
    await store.close()


async def update(url: str, key: str) -> None:
    store = open_store(url)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        try:
            rev = await store.update(key, str(os.getpid()).encode(), int(line))
            emit(f"ok {rev}")
        except ConflictError as err:
            emit(f"conflict {err.current.mod_revision if err.current else 0}")
    await store.close()


async def watch(url: str, prefix: str, after: int, count: int) -> None:
    store = open_store(url)
    w = store.watch(prefix, after)
    emit("ready")
    seen = 0
    async for batch in w:
        for event in batch:
            emit(f"event {event.revision} {event.type} {event.kv.key}")
            seen += 1
        if seen >= count:
            break
    await w.close()
    await store.close()


def main(argv: list[str]) -> None:
    command, url, *rest = argv
    if command == "write":
        asyncio.run(write(url, rest[0], int(rest[1]), int(rest[2])))
    elif command == "update":
        asyncio.run(update(url, rest[0]))
    elif command == "watch":
        asyncio.run(watch(url, rest[0], int(rest[1]), int(rest[2])))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
