"""What every controller of the controller manager shares.

``ControllerContext`` is upstream's ControllerContext: the client, the one shared
``InformerFactory``, the manager's configuration, event recorders and metered work
queues. ``BaseController`` adds to ``tinykube.client.controller.Controller`` only what
the controllers here need: the context and ``enqueue_after``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tinykube.api import meta
from tinykube.client.controller import Controller
from tinykube.client.workqueue import WorkQueue
from tinykube.controllers import util
from tinykube.controllers.expectations import ControllerExpectations

Obj = dict[str, Any]


class WorkQueueMetrics:
    """Upstream's workqueue_* metric families, labelled by queue name."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"],
                           registry=registry)
        self.adds = Counter("workqueue_adds", "Total number of adds handled by workqueue",
                            ["name"], registry=registry)
        self.retries = Counter("workqueue_retries", "Total number of retries handled by "
                               "workqueue", ["name"], registry=registry)
        buckets = tuple(10.0 ** e for e in range(-8, 2))
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested.",
            ["name"], buckets=buckets, registry=registry)
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            ["name"], buckets=buckets, registry=registry)
        self.unfinished = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed "
            "by work_duration. Large values indicate stuck threads.", ["name"],
            registry=registry)
        self.longest = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            ["name"], registry=registry)


class MeteredWorkQueue(WorkQueue):
    """A ``WorkQueue`` that reports depth, adds, retries and latencies."""

    def __init__(self, name: str, metrics: WorkQueueMetrics | None = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        self._metrics = metrics
        self._added_at: dict[Hashable, float] = {}
        self._started_at: dict[Hashable, float] = {}
        if metrics is not None:  # computed when scraped, from the items in flight
            metrics.unfinished.labels(name).set_function(self._unfinished_seconds)
            metrics.longest.labels(name).set_function(self._longest_seconds)

    def _unfinished_seconds(self) -> float:
        now = time.monotonic()
        return sum(now - t for t in self._started_at.values())

    def _longest_seconds(self) -> float:
        now = time.monotonic()
        return max((now - t for t in self._started_at.values()), default=0.0)

    def add(self, key: Hashable) -> None:
        before = len(self)
        fresh = key not in self._dirty and not self.shutting_down
        super().add(key)
        if self._metrics is None or not fresh:
            return
        self._metrics.adds.labels(self.name).inc()
        self._added_at.setdefault(key, time.monotonic())
        if len(self) != before:
            self._metrics.depth.labels(self.name).set(len(self))

    def add_rate_limited(self, key: Hashable) -> None:
        if self._metrics is not None:
            self._metrics.retries.labels(self.name).inc()
        super().add_rate_limited(key)

    async def get(self) -> Hashable:
        key = await super().get()
        if self._metrics is not None:
            now = time.monotonic()
            added = self._added_at.pop(key, None)
            if added is not None:
                self._metrics.queue_duration.labels(self.name).observe(now - added)
            self._started_at[key] = now
            self._metrics.depth.labels(self.name).set(len(self))
        return key

    def done(self, key: Hashable) -> None:
        started = self._started_at.pop(key, None)
        super().done(key)
        if self._metrics is not None:
            if started is not None:
                self._metrics.work_duration.labels(self.name).observe(
                    time.monotonic() - started)
            self._metrics.depth.labels(self.name).set(len(self))


class SpamFilter:
    """Upstream's EventSourceObjectSpamFilter: a token bucket per involved object.

    Each object may have ``burst`` events at once, then one every ``refill_seconds``
    (client-go: 25 and 5 minutes), so a ReplicaSet creating 1,000 pods does not write
    1,000 Events.
    """

    def __init__(self, burst: int = 25, refill_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_tracked: int = 4096) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.clock = clock
        self.max_tracked = max_tracked
        self._buckets: dict[tuple[str, ...], tuple[float, float]] = {}

    def allow(self, obj: Obj) -> bool:
        key = (obj.get("apiVersion", ""), obj.get("kind", ""), meta.namespace(obj),
               meta.name(obj), meta.uid(obj))
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) / self.refill_seconds)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return False
        if key not in self._buckets and len(self._buckets) >= self.max_tracked:
            self._buckets.pop(next(iter(self._buckets)))
        self._buckets[key] = (tokens - 1, now)
        return True


class FilteredRecorder:
    """An event recorder behind the spam filter (same ``event``/``close`` interface)."""

    def __init__(self, recorder: Any, spam_filter: SpamFilter | None = None) -> None:
        self.recorder = recorder
        self.filter = spam_filter or SpamFilter()
        self.filtered = 0

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        if self.filter.allow(obj):
            self.recorder.event(obj, type_, reason, message)
        else:
            self.filtered += 1

    async def close(self) -> None:
        await self.recorder.close()


@dataclass
class ControllerContext:
    """The shared resources handed to every controller factory."""

    client: Any
    informers: Any
    config: Any
    recorder_factory: Callable[[str], Any] | None = None
    queue_metrics: WorkQueueMetrics | None = None
    _recorders: dict[str, Any] = field(default_factory=dict)

    def recorder(self, component: str) -> Any:
        """One EventRecorder per component name, created on first use."""
        rec = self._recorders.get(component)
        if rec is None:
            if self.recorder_factory is not None:
                rec = self.recorder_factory(component)
            else:
                from tinykube.client.events import EventRecorder
                rec = FilteredRecorder(EventRecorder(self.client, component))
            self._recorders[component] = rec
        return rec

    @property
    def recorders(self) -> list[Any]:
        return list(self._recorders.values())

    def new_queue(self, name: str) -> WorkQueue:
        return MeteredWorkQueue(name, self.queue_metrics)


class BaseController(Controller):
    """A controller built from a ``ControllerContext``."""

    def __init__(self, ctx: ControllerContext, name: str, workers: int = 1) -> None:
        super().__init__(name, workers)
        # Assigned here, not passed: an empty queue is falsy (it has __len__), and the
        # base class would swap it for an unmetered one.
        self.queue = ctx.new_queue(name)
        self.ctx = ctx

    def enqueue_after(self, key: Hashable, seconds: float) -> None:
        self.queue.add_after(key, seconds)


def namespace_index(informer: Any) -> None:
    """Index an informer's cache by namespace (idempotent: same name, same function)."""
    informer.add_index("namespace", _namespace_of)


def _namespace_of(obj: Obj) -> list[str]:
    return [meta.namespace(obj)]


def enqueue_controller_of(informer: Any, kind: str, enqueue: Callable[[str], None],
                          expectations: ControllerExpectations | None = None) -> None:
    """Route every add, update and delete on ``informer`` to the ``kind`` controlling the
    object; an add also counts as an observed creation in ``expectations``."""
    def added(obj: Obj) -> None:
        key = util.controller_key(obj, kind)
        if key is not None:
            if expectations is not None:
                expectations.creation_observed(key)
            enqueue(key)

    def changed(obj: Obj) -> None:
        key = util.controller_key(obj, kind)
        if key is not None:
            enqueue(key)

    informer.add_handlers(on_add=added, on_update=lambda old, new: changed(new),
                          on_delete=changed)


def owner_uid_index(informer: Any) -> None:
    """Index an informer's cache by the uids of its objects' owners."""
    informer.add_index("owner-uid", _owner_uids)


def _owner_uids(obj: Obj) -> list[str]:
    return [r.get("uid", "") for r in meta.owner_references(obj)]
