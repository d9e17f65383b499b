"""Helpers for tests that drive a store's watch: bounded waits on events, never sleeps."""

from __future__ import annotations

from tinykube import aio
from tinykube.storage.store import Event, Watch


async def next_batch(watch: Watch, timeout: float = 5.0) -> list[Event]:
    """The watch's next batch, or TimeoutError after ``timeout`` seconds."""
    return await aio.wait_for(watch.__anext__(), timeout)


async def collect_until(watch: Watch, revision: int, timeout: float = 10.0) -> list[Event]:
    """Events from ``watch`` until one at ``revision`` or later arrives (bounded wait)."""
    events: list[Event] = []

    async def run() -> None:
        while not events or events[-1].revision < revision:
            events.extend(await watch.__anext__())

    await aio.wait_for(run(), timeout)
    return events
