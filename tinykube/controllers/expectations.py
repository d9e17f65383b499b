"""Controller expectations: how a controller avoids acting twice on a stale cache.

After a controller asks for N creations it must not create again until its informer has
seen those N pods (or a timeout passes), otherwise the next sync, still reading the old
cache, would create them a second time. Deletions are tracked by pod key so that a pod
seen first as "terminating" and then as "deleted" is only counted once, as upstream's
``UIDTrackingControllerExpectations`` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Upstream's ExpectationsTimeout: an expectation older than this is considered satisfied,
# so a lost watch event can only delay a controller, never wedge it.
EXPECTATIONS_TIMEOUT = 5 * 60.0


@dataclass
class _Expectation:
    add: int = 0
    delete: int = 0
    timestamp: float = field(default_factory=time.monotonic)
    deleting: set[str] = field(default_factory=set)

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0

    def expired(self, now: float) -> bool:
        return now - self.timestamp > EXPECTATIONS_TIMEOUT


class ControllerExpectations:
    """Outstanding creations and deletions per controller key (``ns/name``)."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._items: dict[str, _Expectation] = {}
        self._timeout = timeout

    def satisfied(self, key: str) -> bool:
        """True when the controller may act: nothing pending, all observed, or expired."""
        exp = self._items.get(key)
        if exp is None:
            return True
        return exp.fulfilled() or time.monotonic() - exp.timestamp > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(add=count)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._items[key] = _Expectation(delete=len(pod_keys), deleting=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """Count a deletion once per pod, however many events report it."""
        exp = self._items.get(key)
        if exp is not None and pod_key in exp.deleting:
            exp.deleting.discard(pod_key)
            exp.delete -= 1

    def lower_expectations(self, key: str, add: int = 0, delete: int = 0) -> None:
        """Forget creations/deletions that failed and so will never be observed."""
        exp = self._items.get(key)
        if exp is not None:
            exp.add -= add
            exp.delete -= delete

    def delete_expectations(self, key: str) -> None:
        self._items.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected, for tests and debugging."""
        exp = self._items.get(key)
        return (exp.add, exp.delete) if exp else (0, 0)
