"""Crash-loop back-off per container, with the rules of client-go's ``flowcontrol.Backoff``.

A container that exits is restarted at once the first time; after that each restart waits
``base`` seconds, doubling up to ``cap``. The wait is measured from the container's
``finishedAt``; an entry not renewed for ``2 * cap`` (10 minutes with upstream's 300 s
cap, i.e. the container kept running) starts over at ``base``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

DEFAULT_BASE = 10.0
DEFAULT_CAP = 300.0


@dataclass
class _Entry:
    backoff: float
    last_update: float


@dataclass
class Backoff:
    base: float = DEFAULT_BASE
    cap: float = DEFAULT_CAP
    entries: dict[str, _Entry] = field(default_factory=dict)

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.cap

    def get(self, key: str) -> float:
        entry = self.entries.get(key)
        return entry.backoff if entry else 0.0

    def in_backoff_since(self, key: str, event_time: float, now: float | None = None) -> bool:
        """Whether a restart must still wait, for a container that finished at ``event_time``."""
        entry = self.entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return False
        now = time.time() if now is None else now
        return now - event_time < entry.backoff

    def remaining(self, key: str, event_time: float, now: float | None = None) -> float:
        entry = self.entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return 0.0
        now = time.time() if now is None else now
        return max(0.0, event_time + entry.backoff - now)

    def next(self, key: str, now: float | None = None) -> None:
        """Record a restart: the next one waits twice as long (up to ``cap``)."""
        now = time.time() if now is None else now
        entry = self.entries.get(key)
        if entry is None or self._expired(entry, now):
            self.entries[key] = _Entry(self.base, now)
        else:
            entry.backoff = min(entry.backoff * 2, self.cap)
            entry.last_update = now

    def forget(self, prefix: str) -> None:
        """Drop the entries of one pod (keys start with its uid)."""
        for key in [k for k in self.entries if k.startswith(prefix)]:
            del self.entries[key]


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` for the whole seconds back-off uses: 10s, 1m20s, 5m0s."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    total = int(round(seconds))
    minutes, secs = divmod(total, 60)
    if minutes == 0:
        if abs(seconds - total) > 1e-9:
            return f"{seconds:g}s"
        return f"{secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s"
