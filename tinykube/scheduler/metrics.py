"""The scheduler's Prometheus metrics (upstream names) and its /healthz + /metrics server."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SCHEDULED = "scheduled"
UNSCHEDULABLE = "unschedulable"
ERROR = "error"


class SchedulerMetrics:
    """One registry per scheduler, so several schedulers can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.schedule_attempts = Counter(
            "scheduler_schedule_attempts_total",
            "Number of attempts to schedule pods, by the result.",
            ["result", "profile"], registry=self.registry)
        self.attempt_duration = Histogram(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            ["result", "profile"], registry=self.registry,
            buckets=[0.001 * 2 ** i for i in range(15)])
        self.algorithm_duration = Histogram(
            "scheduler_scheduling_algorithm_duration_seconds",
            "Scheduling algorithm latency in seconds", registry=self.registry,
            buckets=[0.0001 * 2 ** i for i in range(15)])
        self.pending_pods = Gauge(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type.", ["queue"], registry=self.registry)
        self.preemption_attempts = Counter(
            "scheduler_preemption_attempts_total",
            "Total preemption attempts in the cluster till now", registry=self.registry)
        self.preemption_victims = Histogram(
            "scheduler_preemption_victims", "Number of selected preemption victims",
            registry=self.registry, buckets=[1, 2, 4, 8, 16, 32, 64])

    def observe(self, result: str, profile: str, seconds: float) -> None:
        self.schedule_attempts.labels(result, profile).inc()
        self.attempt_duration.labels(result, profile).observe(seconds)

    def render(self, pending: dict[str, int]) -> bytes:
        for queue, count in pending.items():
            self.pending_pods.labels(queue).set(count)
        return generate_latest(self.registry)


def health_app(metrics: SchedulerMetrics, pending: Callable[[], dict[str, int]],
               healthy: Callable[[], bool]) -> web.Application:
    """/healthz, /livez, /readyz answer ``ok``; /metrics is the Prometheus text format."""

    async def health(request: web.Request) -> web.Response:
        if healthy():
            return web.Response(text="ok")
        return web.Response(status=500, text="[-]informers not synced\nhealthz check failed")

    async def render(request: web.Request) -> web.Response:
        body = metrics.render(pending())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, health)
    app.router.add_get("/metrics", render)
    return app
