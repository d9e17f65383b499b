"""The change feed: informer notifications fanned out to each browser's event stream.

Informer handlers only enqueue a ``Change`` into every subscriber's bounded queue; the
stream writer turns it into a row and an SSE message. A subscriber that falls more than
``max_pending`` changes behind is not allowed to grow without bound: its queue is cleared
and it is told to ``resync`` (re-read the pages), as a watcher that overflows relists.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from tinykube import aio

Obj = dict[str, Any]

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True)
class Change:
    """One object's add/update/delete, seen by the informer of ``resource``."""

    resource: str
    type: str
    obj: Obj


RESYNC = Change("", "RESYNC", {})
CLOSED = Change("", "CLOSED", {})


@dataclass(eq=False)  # identity-hashed: Feed keeps a set of them
class Subscriber:
    """One browser's pending changes; ``wait()`` returns the next, in order."""

    max_pending: int = 2000
    _pending: deque[Change] = field(default_factory=deque)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, change: Change) -> None:
        if change is CLOSED:
            self._pending.clear()
        elif len(self._pending) >= self.max_pending:
            self._pending.clear()
            change = RESYNC
        self._pending.append(change)
        self._ready.set()

    async def next(self, timeout: float | None = None) -> Change | None:
        """The next change, or None when ``timeout`` passes first (time for a keep-alive)."""
        if not self._pending:
            self._ready.clear()
            try:
                await aio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        return self._pending.popleft()

    def __len__(self) -> int:
        return len(self._pending)


class Feed:
    """Subscribers of the dashboard's live stream."""

    def __init__(self, max_pending: int = 2000) -> None:
        self.max_pending = max_pending
        self._subscribers: set[Subscriber] = set()

    def subscribe(self) -> Subscriber:
        sub = Subscriber(self.max_pending)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)

    def publish(self, change: Change) -> None:
        for sub in self._subscribers:
            sub.offer(change)

    def close(self) -> None:
        """Tell every stream to end (the dashboard is stopping)."""
        self.publish(CLOSED)

    def __len__(self) -> int:
        return len(self._subscribers)

    def handlers(self, resource: str) -> dict[str, Any]:
        """Informer handlers (keyword arguments of ``add_handlers``) publishing ``resource``."""
        return {
            "on_add": lambda obj: self.publish(Change(resource, ADDED, obj)),
            "on_update": lambda old, new: self.publish(Change(resource, MODIFIED, new)),
            "on_delete": lambda obj: self.publish(Change(resource, DELETED, obj)),
        }


def sse_message(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One Server-Sent Events message; ``data`` is JSON on a single line."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + orjson.dumps(data).decode())
    return ("\n".join(lines) + "\n\n").encode()


SSE_KEEPALIVE = b": keep-alive\n\n"
