"""Reading CRI-format container logs (``<RFC3339Nano> <stream> <P|F> <content>``).

The kubelet serves ``/containerLogs`` from these files with the options of
``PodLogOptions``: tailLines, sinceSeconds/sinceTime, timestamps, limitBytes and follow.
Following waits on inotify (as upstream's fsnotify does) for the file to grow and stops
once the container has exited and the file is read to its end.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

from tinykube.kubelet.inotify import Inotify



@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_time: float | None = None  # Unix seconds
    timestamps: bool = False
    limit_bytes: int | None = None


@dataclass
class LogRecord:
    timestamp: str
    stream: str
    partial: bool
    content: bytes

    @property
    def time(self) -> float:
        return parse_rfc3339nano(self.timestamp)


def parse_line(line: bytes) -> LogRecord | None:
    """Parse one CRI log line (without its newline); None for malformed lines."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0], parts[1], parts[2]
    content = parts[3] if len(parts) > 3 else b""
    return LogRecord(ts.decode(errors="replace"), stream.decode(errors="replace"), tag == b"P", content)


def parse_rfc3339nano(value: str) -> float:
    main, _, frac = value.rstrip("Z").partition(".")
    base = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def render(rec: LogRecord, timestamps: bool) -> bytes:
    body = rec.content + (b"" if rec.partial else b"\n")
    return (rec.timestamp.encode() + b" " + body) if timestamps else body


def select_records(lines: list[bytes], opts: LogOptions) -> list[LogRecord]:
    records = [r for r in (parse_line(line) for line in lines) if r is not None]
    if opts.since_time is not None:
        records = [r for r in records if r.time >= opts.since_time]
    if opts.tail_lines is not None:
        # count whole lines: a run of partial records ends with a full one
        full = [i for i, r in enumerate(records) if not r.partial]
        if opts.tail_lines <= 0:
            return []
        if len(full) > opts.tail_lines:
            start = full[-opts.tail_lines - 1] + 1
            records = records[start:]
    return records


async def read_log(path: str, opts: LogOptions, exited: Callable[[], asyncio.Event] | None = None) -> AsyncIterator[bytes]:
    """Yield the log's content per ``opts``; with ``follow`` keep yielding until exit."""
    budget = opts.limit_bytes
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    lines = data.split(b"\n")
    rest = lines.pop()  # an incomplete last line is read again when following
    offset = len(data) - len(rest)
    async for rec in _records(path, select_records(lines, opts), offset, exited if opts.follow else None):
        chunk = render(rec, opts.timestamps)
        if budget is not None:
            chunk = chunk[:budget]
            budget -= len(chunk)
        if chunk:
            yield chunk
        if budget is not None and budget <= 0:
            return


async def _records(path: str, selected: list[LogRecord], offset: int,
                   exited: Callable[[], asyncio.Event] | None) -> AsyncIterator[LogRecord]:
    """The records selected from what was read, then (when following) those written later."""
    for rec in selected:
        yield rec
    if exited is not None:
        async for rec in follow_records(path, offset, exited()):
            yield rec


async def follow_records(path: str, offset: int, stop: asyncio.Event) -> AsyncIterator[LogRecord]:
    """The records written to the log from ``offset`` on, as they are written, until ``stop``
    is set and the log has no more."""
    watch = Inotify(path)
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            pending = b""
            while True:
                data = f.read()
                if data:
                    pending += data
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        rec = parse_line(line)
                        if rec is not None:
                            yield rec
                    continue
                if stop.is_set():
                    return
                await watch.wait(stop)
    finally:
        watch.close()


def end_offset(path: str) -> int:
    """Where the log's next record will start (its size, or 0 when it does not exist yet)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
