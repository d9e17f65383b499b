"""Termination messages: what a container leaves for ``state.terminated.message``.

As upstream's kubelet does, each container attempt gets an empty file of its own under the
pod's directory, bind-mounted at its ``terminationMessagePath`` (``/dev/termination-log``
by default) and writable by any user. Once the container exits the kubelet reads what
it wrote there (the last 4 KiB); with ``terminationMessagePolicy: FallbackToLogsOnError``
a container that failed without writing anything leaves the tail of its log instead (the
last 80 lines, at most 2 KiB). A runtime's own message (why it could not run, say) comes
first, as ``<runtime's message>: <container's message>``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

from tinykube.kubelet.runtime.interface import ContainerStatus, Mount
from tinykube.kubelet.runtime.logs import LogOptions, render, select_records

MAX_MESSAGE = 4 * 1024  # upstream's MaxContainerTerminationMessageLength
MAX_LOG_LINES = 80  # MaxContainerTerminationMessageLogLines
MAX_LOG_BYTES = 2 * 1024  # MaxContainerTerminationMessageLogLength
LOG_WINDOW = 256 * 1024  # how much of the log's end is read to find its last lines
FALLBACK = "FallbackToLogsOnError"


def message_file(pod_dir: str, name: str, attempt: int) -> str:
    return os.path.join(pod_dir, "containers", name, f"{attempt}.termination-log")


def prepare(c: dict[str, Any], pod_dir: str, attempt: int) -> Mount | None:
    """Create the attempt's empty message file; the mount that shows it to the container."""
    target = c.get("terminationMessagePath") or ""
    if not target or any(m.get("mountPath") == target for m in c.get("volumeMounts") or []):
        return None  # a volume mounted there wins, as upstream
    path = message_file(pod_dir, c["name"], attempt)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    os.fchmod(fd, 0o666)  # whatever the umask: a container running as any user may write it
    os.close(fd)
    return Mount(target, path)


async def with_message(status: ContainerStatus, c: dict[str, Any], pod_dir: str) -> ContainerStatus:
    """``status`` of an exited container, its message enriched with the container's own."""
    fallback = c.get("terminationMessagePolicy") == FALLBACK and status.exit_code != 0
    written = await asyncio.to_thread(_read_message, message_file(pod_dir, c["name"], status.attempt)) \
        if c.get("terminationMessagePath") else ""
    if not written and fallback and status.log_path:
        written = await asyncio.to_thread(log_tail, status.log_path)
    if not written:
        return status
    return dataclasses.replace(status, message=f"{status.message}: {written}" if status.message else written)


def _read_message(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - MAX_MESSAGE))
            return f.read(MAX_MESSAGE).decode(errors="replace")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"Error on reading termination log {path}: {exc}"


def log_tail(log_path: str) -> str:
    """The last lines of a container's log, as ``kubectl logs --tail`` would print them."""
    try:
        with open(log_path, "rb") as f:
            start = max(0, os.fstat(f.fileno()).st_size - LOG_WINDOW)
            f.seek(start)
            data = f.read()
    except OSError as exc:
        return f"Error on reading termination message from logs: {exc}"
    lines = data.split(b"\n")
    if start:
        lines = lines[1:]  # the window began inside a line
    text = b"".join(render(rec, timestamps=False)
                    for rec in select_records(lines, LogOptions(tail_lines=MAX_LOG_LINES)))
    return text[-MAX_LOG_BYTES:].decode(errors="replace")
