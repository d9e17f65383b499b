"""The scheduling queue: activeQ, backoffQ and the unschedulable pods, as upstream.

- activeQ: pods ready to be tried, highest ``spec.priority`` first, then oldest.
- backoffQ: pods that failed recently, each waiting ``1s * 2**(attempts-1)`` (max 10s);
  a timer moves the earliest one to activeQ when its back-off ends.
- unschedulable: pods no node fits. A cluster event that could help them (a node added or
  changed, a pod deleted, ...) moves those whose rejecting plugins care about the event to
  backoffQ/activeQ; anything left longer than 5 minutes is retried anyway.
If a move request arrives while a pod is in its scheduling cycle, a failure sends that pod
to backoffQ instead of the unschedulable pool, so the event is not lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tinykube.api import meta
from tinykube.scheduler.nodeinfo import PodInfo

Object = dict[str, Any]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0  # podMaxInUnschedulablePodsDuration
FLUSH_UNSCHEDULABLE_EVERY = 30.0

# Cluster events and the plugins whose rejections they may resolve (upstream's
# EventsToRegister, coarse-grained). "*" = every plugin.
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
POD_DELETE = "AssignedPodDelete"
POD_ADD = "AssignedPodAdd"
POD_UPDATE = "AssignedPodUpdate"
EVENT_PLUGINS: dict[str, frozenset[str]] = {
    NODE_ADD: frozenset({"*"}),
    NODE_UPDATE: frozenset({"*"}),
    POD_DELETE: frozenset({"NodeResourcesFit", "InterPodAffinity", "PodTopologySpread",
                           "NodePorts", "DefaultPreemption"}),
    POD_ADD: frozenset({"InterPodAffinity", "PodTopologySpread"}),
    POD_UPDATE: frozenset({"InterPodAffinity", "PodTopologySpread", "NodeResourcesFit"}),
}


class QueueClosed(Exception):
    """Raised by ``pop`` once the queue has been closed."""


@dataclass
class QueuedPodInfo:
    """A pending pod with its queue bookkeeping."""

    info: PodInfo
    timestamp: float = field(default_factory=time.monotonic)
    initial_attempt: float | None = None
    attempts: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)
    last_failure: float = 0.0
    backoff_until: float = 0.0
    in_unschedulable_since: float = 0.0

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def pod(self) -> Object:
        return self.info.pod


def backoff_duration(attempts: int, initial: float = INITIAL_BACKOFF,
                     maximum: float = MAX_BACKOFF) -> float:
    """1s, 2s, 4s, 8s, 10s, 10s, ... for attempts 1, 2, 3, ..."""
    if attempts <= 0:
        return 0.0
    return min(initial * (2 ** (attempts - 1)), maximum)


class SchedulingQueue:
    """Priority queue of pending pods with back-off and an unschedulable pool."""

    def __init__(self, initial_backoff: float = INITIAL_BACKOFF,
                 max_backoff: float = MAX_BACKOFF) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self._seq = itertools.count()
        self._active: list[tuple[int, float, int, str]] = []
        self._active_items: dict[str, QueuedPodInfo] = {}
        self._backoff: list[tuple[float, int, str]] = []
        self._backoff_items: dict[str, QueuedPodInfo] = {}
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._in_flight: dict[str, QueuedPodInfo] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._flusher: asyncio.TimerHandle | None = None
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._closed = False

    # -- counts (for scheduler_pending_pods) ---------------------------------------------

    def pending(self) -> dict[str, int]:
        return {"active": len(self._active_items), "backoff": len(self._backoff_items),
                "unschedulable": len(self._unschedulable), "gated": 0}

    def __contains__(self, key: str) -> bool:
        return (key in self._active_items or key in self._backoff_items
                or key in self._unschedulable or key in self._in_flight)

    # -- adding --------------------------------------------------------------------------

    def add(self, pod: Object) -> None:
        """A new pending pod goes straight to activeQ."""
        if meta.key(pod) in self:
            self.update(pod)
            return
        self._push_active(QueuedPodInfo(PodInfo(pod)))

    def _push_active(self, qp: QueuedPodInfo) -> None:
        self._active_items[qp.key] = qp
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, next(self._seq), qp.key))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def backoff_end(self, qp: QueuedPodInfo) -> float:
        """When the pod's back-off after its last failed attempt ends."""
        return qp.last_failure + backoff_duration(qp.attempts, self.initial_backoff,
                                                  self.max_backoff)

    def _push_backoff(self, qp: QueuedPodInfo) -> None:
        qp.backoff_until = self.backoff_end(qp)
        self._backoff_items[qp.key] = qp
        heapq.heappush(self._backoff, (qp.backoff_until, next(self._seq), qp.key))
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._closed or not self._backoff:
            return
        loop = asyncio.get_running_loop()
        due = self._backoff[0][0]
        delay = max(0.0, due - time.monotonic())
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(delay, self.flush_backoff)
        if self._flusher is None:
            self._flusher = loop.call_later(FLUSH_UNSCHEDULABLE_EVERY,
                                            self._periodic_unschedulable_flush)

    def flush_backoff(self) -> None:
        """Move every pod whose back-off has ended to activeQ."""
        self._timer = None
        now = time.monotonic()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            qp = self._backoff_items.get(key)
            if qp is None or qp.backoff_until > now:
                continue
            del self._backoff_items[key]
            self._push_active(qp)
        self._arm_timer()

    def _periodic_unschedulable_flush(self) -> None:
        self._flusher = None
        self.flush_unschedulable_leftover()
        if not self._closed and self._unschedulable:
            self._flusher = asyncio.get_running_loop().call_later(
                FLUSH_UNSCHEDULABLE_EVERY, self._periodic_unschedulable_flush)

    def flush_unschedulable_leftover(self, now: float | None = None) -> None:
        """Retry pods that sat in the unschedulable pool longer than five minutes."""
        now = time.monotonic() if now is None else now
        stale = [qp for qp in self._unschedulable.values()
                 if now - qp.in_unschedulable_since >= MAX_IN_UNSCHEDULABLE]
        self._requeue(stale)

    # -- taking --------------------------------------------------------------------------

    async def pop(self) -> QueuedPodInfo:
        """The next pod to schedule (waits while activeQ is empty)."""
        while True:
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                qp = self._active_items.pop(key, None)
                if qp is None:
                    continue  # superseded entry
                qp.attempts += 1
                if qp.initial_attempt is None:
                    qp.initial_attempt = time.monotonic()
                self.scheduling_cycle += 1
                self._in_flight[key] = qp
                return qp
            if self._closed:
                raise QueueClosed()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def done(self, key: str) -> None:
        """The pod left its scheduling cycle (scheduled, or re-queued by a failure)."""
        self._in_flight.pop(key, None)

    def add_unschedulable_if_not_present(self, qp: QueuedPodInfo, cycle: int,
                                         backoff_only: bool = False) -> None:
        """Re-queue a pod that failed: unschedulable pool, or backoffQ after a move request."""
        self._in_flight.pop(qp.key, None)
        qp.last_failure = time.monotonic()
        if qp.key in self._active_items or qp.key in self._backoff_items \
                or qp.key in self._unschedulable:
            return
        if backoff_only or self.move_request_cycle >= cycle:
            self._push_backoff(qp)
            return
        qp.in_unschedulable_since = time.monotonic()
        self._unschedulable[qp.key] = qp
        if self._flusher is None and not self._closed:
            self._flusher = asyncio.get_running_loop().call_later(
                FLUSH_UNSCHEDULABLE_EVERY, self._periodic_unschedulable_flush)

    # -- cluster events ------------------------------------------------------------------

    def move_all_to_active_or_backoff(self, event: str) -> None:
        """A cluster event happened: retry the unschedulable pods it may help."""
        interested = EVENT_PLUGINS.get(event, frozenset({"*"}))
        movable = [qp for qp in self._unschedulable.values()
                   if "*" in interested or not qp.unschedulable_plugins
                   or qp.unschedulable_plugins & interested]
        self._requeue(movable)
        self.move_request_cycle = self.scheduling_cycle

    def _requeue(self, qps: Iterable[QueuedPodInfo]) -> None:
        now = time.monotonic()
        for qp in qps:
            self._unschedulable.pop(qp.key, None)
            if qp.attempts and now < self.backoff_end(qp):
                self._push_backoff(qp)
            else:
                self._push_active(qp)

    def update(self, pod: Object) -> None:
        """A pending pod changed: refresh it; an unschedulable one is retried at once."""
        key = meta.key(pod)
        for pool in (self._active_items, self._backoff_items):
            qp = pool.get(key)
            if qp is not None:
                qp.info = qp.info.with_object(pod)
                return
        qp = self._in_flight.get(key)
        if qp is not None:
            qp.info = qp.info.with_object(pod)
            return
        qp = self._unschedulable.pop(key, None)
        if qp is None:
            self._push_active(QueuedPodInfo(PodInfo(pod)))
            return
        old = qp.info
        qp.info = old.with_object(pod)
        if qp.info.spec != old.spec or qp.info.labels != old.labels:
            self._requeue([qp])
        else:
            self._unschedulable[key] = qp

    def delete(self, pod: Object) -> None:
        key = meta.key(pod)
        self._active_items.pop(key, None)
        self._backoff_items.pop(key, None)
        self._unschedulable.pop(key, None)
        self._in_flight.pop(key, None)

    def close(self) -> None:
        self._closed = True
        for handle in (self._timer, self._flusher):
            if handle is not None:
                handle.cancel()
        self._timer = self._flusher = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
