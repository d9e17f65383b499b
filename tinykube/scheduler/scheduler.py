"""The scheduler: watch pending pods, pick a node for each, bind asynchronously.

The scheduling cycle (``schedule_one``) is synchronous: it pops a pod, runs the profile's
framework against the cache and *assumes* the pod onto the chosen node, so the next cycle
already sees the node's new load. The binding cycle (pre-bind, bind, the Scheduled event)
runs in its own task, so the loop never waits on HTTP; a failed binding forgets the
assumed pod and re-queues it. Unschedulable pods get ``PodScheduled=False`` with upstream's
message, a FailedScheduling event, and wait for a cluster event that may help them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tinykube.api import meta, pods
from tinykube.api.errors import ApiError
from tinykube.client.events import EventRecorder
from tinykube.client.informer import InformerFactory
from tinykube.client.leaderelection import LeaderElector
from tinykube.client.rest import Client
from tinykube.scheduler import metrics as m
from tinykube.scheduler.cache import SchedulerCache
from tinykube.scheduler.config import (DEFAULT_SCHEDULER_NAME, KubeSchedulerConfiguration,
                                       load_config)
from tinykube.scheduler.framework import CycleState
from tinykube.scheduler.nodeinfo import PodInfo
from tinykube.scheduler.queue import (NODE_ADD, NODE_UPDATE, POD_ADD, POD_DELETE, POD_UPDATE,
                                      QueueClosed, QueuedPodInfo, SchedulingQueue)
from tinykube.scheduler.registry import REGISTRY
from tinykube.scheduler.runtime import Framework, ScheduleResult, Services

log = logging.getLogger(__name__)
Object = dict[str, Any]

COMPONENT = "default-scheduler"
FILTER_ANNOTATION = "scheduler.tinykube.dev/filter-results"
SCORE_ANNOTATION = "scheduler.tinykube.dev/score-results"
SELECTED_ANNOTATION = "scheduler.tinykube.dev/selected-node"
# Binding cycles in flight at once: enough to keep the API server busy, few enough that
# requests do not queue for pooled connections (the loop waits for a slot, pods stay
# assumed in the cache meanwhile).
MAX_IN_FLIGHT_BINDINGS = 128


@dataclass
class SchedulerConfig:
    """How to run one scheduler process (flags of ``tinykube scheduler``)."""

    kubeconfig: str | None = None
    client: Client | None = None
    config_file: str | None = None
    configuration: KubeSchedulerConfiguration | None = None
    leader_elect: bool | None = None  # None: as the configuration says (upstream: true)
    bind_address: str = "127.0.0.1"
    secure_port: int = 10259  # 0 picks a free port; -1 serves nothing
    explain: bool = False
    identity: str | None = None
    max_in_flight_bindings: int = MAX_IN_FLIGHT_BINDINGS
    extra_registry: dict[str, Any] = field(default_factory=dict)


def _is_terminal(pod: Object) -> bool:
    return pods.phase(pod) in ("Succeeded", "Failed")


def _node_changed(old: Object, new: Object) -> bool:
    """Did anything the scheduler filters on change (not just a heartbeat)?"""
    old_status, new_status = old.get("status") or {}, new.get("status") or {}
    return (meta.labels(old) != meta.labels(new) or old.get("spec") != new.get("spec")
            or old_status.get("allocatable") != new_status.get("allocatable")
            or old_status.get("images") != new_status.get("images"))


class Scheduler:
    """kube-scheduler: informers, queue, profiles, leader election, metrics."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.configuration = config.configuration or (
            load_config(config.config_file) if config.config_file
            else KubeSchedulerConfiguration())
        self.client = config.client or Client.from_kubeconfig(
            config.kubeconfig, user_agent="tinykube-scheduler")
        self._owns_client = config.client is None
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(self.configuration.pod_initial_backoff_seconds,
                                     self.configuration.pod_max_backoff_seconds)
        self.recorder = EventRecorder(self.client, COMPONENT, host=socket.gethostname())
        self.metrics = m.SchedulerMetrics()
        self._tasks: set[asyncio.Task[Any]] = set()
        registry = {**REGISTRY, **config.extra_registry}
        services = Services(self.client, self.cache, self.recorder, self.spawn)
        self.profiles: dict[str, Framework] = {
            p.scheduler_name: Framework(p, services, registry)
            for p in self.configuration.profiles}
        self.informers = InformerFactory(self.client)
        self._next_start = 0
        self._main: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.elector: LeaderElector | None = None
        self.scheduled = 0
        self._binding_slots = asyncio.Semaphore(config.max_in_flight_bindings)
        # Set when leadership is lost; `tinykube scheduler` then exits, as upstream does.
        self.lost_leadership = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Serve health/metrics, sync the caches, then schedule (once leading, if electing)."""
        await self._serve()
        self._wire_informers()
        await self.informers.start_all()
        le = self.configuration.leader_election
        elect = le.leader_elect if self.config.leader_elect is None else self.config.leader_elect
        if elect:
            self.elector = LeaderElector(
                self.client, le.resource_namespace, le.resource_name, self.config.identity,
                le.lease_duration, le.renew_deadline, le.retry_period)
            self._main = asyncio.create_task(self._lead(), name="scheduler-leader-election")
        else:
            self._main = asyncio.create_task(self.run(), name="scheduler-loop")

    async def _lead(self) -> None:
        assert self.elector is not None
        await self.elector.run(self.run)
        log.error("leaderelection lost: lease %s/%s", self.elector.namespace,
                  self.elector.name)
        self.lost_leadership.set()

    async def stop(self) -> None:
        self.queue.close()
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.informers.stop_all()
        await self.recorder.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._owns_client:
            await self.client.close()

    async def _serve(self) -> None:
        if self.config.secure_port < 0:
            return
        app = m.health_app(self.metrics, self.queue.pending,
                           lambda: all(i.has_synced for i in self.informers.informers))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.bind_address, self.config.secure_port)
        await site.start()
        server = site._server
        self.port = server.sockets[0].getsockname()[1] if server else None  # type: ignore

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        """Run ``coro`` as a task the scheduler owns (cancelled and awaited on stop)."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("scheduler task %s failed", task.get_name(),
                      exc_info=task.exception())

    # -- informers -----------------------------------------------------------------------

    def _wire_informers(self) -> None:
        nodes = self.informers.informer("nodes")
        nodes.add_handlers(self._on_node_add, self._on_node_update, self.cache.remove_node)
        all_pods = self.informers.informer("pods")
        all_pods.add_handlers(self._on_pod_add, self._on_pod_update, self._on_pod_delete)
        namespaces = self.informers.informer("namespaces")
        namespaces.add_handlers(self.cache.set_namespace,
                                lambda old, new: self.cache.set_namespace(new),
                                self.cache.remove_namespace)

    def _on_node_add(self, node: Object) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff(NODE_ADD)

    def _on_node_update(self, old: Object, new: Object) -> None:
        self.cache.update_node(new)
        if _node_changed(old, new):
            self.queue.move_all_to_active_or_backoff(NODE_UPDATE)

    def _responsible_for(self, pod: Object) -> bool:
        return (pods.spec(pod).get("schedulerName") or DEFAULT_SCHEDULER_NAME) in self.profiles

    def _on_pod_add(self, pod: Object) -> None:
        if pods.node_name(pod):
            if not _is_terminal(pod):
                self.cache.add_pod(pod)
                self.queue.move_all_to_active_or_backoff(POD_ADD)
        elif self._responsible_for(pod) and not meta.is_deleting(pod) and not _is_terminal(pod):
            self.queue.add(pod)

    def _on_pod_update(self, old: Object, new: Object) -> None:
        if pods.node_name(new):
            if not pods.node_name(old):
                self.queue.delete(old)
            if _is_terminal(new):
                self.cache.remove_pod(new)
                self.queue.move_all_to_active_or_backoff(POD_DELETE)
            else:
                self.cache.update_pod(old, new)
                if meta.labels(old) != meta.labels(new):
                    self.queue.move_all_to_active_or_backoff(POD_UPDATE)
        elif self._responsible_for(new):
            if meta.is_deleting(new) or _is_terminal(new):
                self.queue.delete(new)
            elif not self.cache.is_assumed(meta.key(new)):
                self.queue.update(new)

    def _on_pod_delete(self, pod: Object) -> None:
        if pods.node_name(pod) or self.cache.has_pod(meta.key(pod)):
            self.cache.remove_pod(pod)
            self.queue.move_all_to_active_or_backoff(POD_DELETE)
        self.queue.delete(pod)

    # -- the scheduling loop -------------------------------------------------------------

    async def run(self) -> None:
        """Schedule pods one after another until cancelled."""
        log.info("scheduler started with profiles %s", ", ".join(self.profiles))
        while True:
            await self._binding_slots.acquire()  # back-pressure from binding cycles
            handed_over = False
            try:
                qp = await self.queue.pop()
                try:
                    result = self.schedule_one(qp)
                    # a binding cycle was started: it owns the slot now
                    handed_over = (result is not None and result.node is not None
                                   and not result.error)
                finally:
                    self.queue.done(qp.key)
            except QueueClosed:
                return
            finally:
                if not handed_over:
                    self._binding_slots.release()
            await asyncio.sleep(0)  # let informers and bindings run between cycles

    def schedule_one(self, qp: QueuedPodInfo) -> ScheduleResult | None:
        """One scheduling cycle: pick a node, assume, reserve, and start binding."""
        pod = qp.info
        fwk = self.profiles.get(pod.spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME)
        if fwk is None or self.cache.has_pod(pod.key) or meta.is_deleting(pod.pod):
            return None
        started = time.perf_counter()
        cycle = self.queue.scheduling_cycle
        state = CycleState()
        result, self._next_start = fwk.find_nodes(state, pod, self._next_start,
                                                  self.config.explain)
        self.metrics.algorithm_duration.observe(time.perf_counter() - started)
        if result.node is None:
            self._handle_failure(fwk, state, qp, result, cycle, started)
            return result
        assumed = pod.on_node(result.node)
        self.cache.assume_pod(assumed, result.node)
        status = fwk.run_reserve(state, assumed, result.node) or fwk.run_permit(
            state, assumed, result.node)
        if status is not None:
            fwk.run_unreserve(state, assumed, result.node)
            self.cache.forget_pod(assumed.key)
            result.error = status.message
            self._handle_failure(fwk, state, qp, result, cycle, started)
            return result
        self.spawn(self._bind_with_slot(fwk, state, qp, assumed, result, started),
                   f"bind-{pod.key}")
        return result

    async def _bind_with_slot(self, *args: Any) -> None:
        """The binding cycle, releasing the slot the scheduling loop took for it."""
        try:
            await self._binding_cycle(*args)
        finally:
            self._binding_slots.release()

    async def _binding_cycle(self, fwk: Framework, state: CycleState, qp: QueuedPodInfo,
                             assumed: PodInfo, result: ScheduleResult, started: float) -> None:
        node = result.node or ""
        try:
            if self.config.explain:
                await self._write_explanation(assumed, result)
            status = await fwk.run_pre_bind(state, assumed, node) or await fwk.run_bind(
                state, assumed, node)
        except (ApiError, ConnectionError, asyncio.TimeoutError) as exc:
            status = None
            failure = str(exc)
        else:
            failure = status.message if status is not None else ""
        if failure:
            fwk.run_unreserve(state, assumed, node)
            self.cache.forget_pod(assumed.key)
            self.metrics.observe(m.ERROR, fwk.profile_name, time.perf_counter() - started)
            log.warning("binding %s to %s failed: %s", assumed.key, node, failure)
            self.queue.move_all_to_active_or_backoff(POD_DELETE)
            if await self._still_pending(assumed):
                self.recorder.event(qp.pod, "Warning", "FailedScheduling",
                                    f"Binding rejected: {failure}")
                self.queue.add_unschedulable_if_not_present(qp, self.queue.scheduling_cycle,
                                                            backoff_only=True)
            return
        self.cache.finish_binding(assumed.key)
        fwk.run_post_bind(state, assumed, node)
        self.scheduled += 1
        self.metrics.observe(m.SCHEDULED, fwk.profile_name, time.perf_counter() - started)
        self.recorder.event(qp.pod, "Normal", "Scheduled",
                            f"Successfully assigned {assumed.namespace}/{assumed.name} to {node}")

    async def _still_pending(self, pod: PodInfo) -> bool:
        try:
            current = await self.client.resource("pods").get(pod.name, namespace=pod.namespace)
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise
        return not pods.node_name(current) and not meta.is_deleting(current)

    async def _write_explanation(self, pod: PodInfo, result: ScheduleResult) -> None:
        """--explain: per-plugin filter verdicts and scores as pod annotations."""
        annotations = {SELECTED_ANNOTATION: result.node or ""}
        if result.filter_results is not None:
            annotations[FILTER_ANNOTATION] = orjson.dumps(result.filter_results).decode()
        if result.score_results is not None:
            annotations[SCORE_ANNOTATION] = orjson.dumps(result.score_results).decode()
        await self.client.resource("pods").patch(
            pod.name, {"metadata": {"annotations": annotations}}, namespace=pod.namespace,
            patch_type="merge")

    # -- failures ------------------------------------------------------------------------

    def _handle_failure(self, fwk: Framework, state: CycleState, qp: QueuedPodInfo,
                        result: ScheduleResult, cycle: int, started: float) -> None:
        nominated = ""
        if result.error:
            outcome = m.ERROR
        else:
            outcome = m.UNSCHEDULABLE
            if fwk.post_filter_plugins and result.num_nodes:
                self.metrics.preemption_attempts.inc()
                post, status = fwk.run_post_filter(state, qp.info, result.diagnosis)
                if post is not None and post.nominated_node_name:
                    nominated = post.nominated_node_name
                elif status is not None:
                    result.diagnosis.post_filter_msg = status.message
        qp.unschedulable_plugins = set(result.diagnosis.unschedulable_plugins)
        self.queue.add_unschedulable_if_not_present(qp, cycle,
                                                    backoff_only=outcome == m.ERROR)
        self.metrics.observe(outcome, fwk.profile_name, time.perf_counter() - started)
        message = result.message
        self.recorder.event(qp.pod, "Warning", "FailedScheduling", message)
        self.spawn(self._record_unschedulable(qp.info, message, nominated),
                   f"status-{qp.key}")

    async def _record_unschedulable(self, pod: PodInfo, message: str, nominated: str) -> None:
        """PodScheduled=False (reason Unschedulable) and nominatedNodeName on the pod."""
        current = pods.condition(pod.pod, "PodScheduled") or {}
        old_nominated = (pod.pod.get("status") or {}).get("nominatedNodeName") or ""
        if (current.get("status") == "False" and current.get("reason") == "Unschedulable"
                and current.get("message") == message and nominated in ("", old_nominated)):
            return
        status: Object = {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": None,
            "lastTransitionTime": current.get("lastTransitionTime")
            if current.get("status") == "False" else meta.now()}]}
        if nominated:
            status["nominatedNodeName"] = nominated
        try:
            await self.client.resource("pods").patch(
                pod.name, {"status": status}, namespace=pod.namespace, subresource="status")
        except ApiError as exc:
            if exc.code != 404:
                log.warning("could not update status of %s: %s", pod.key, exc)
        except ConnectionError as exc:
            log.warning("could not update status of %s: %s", pod.key, exc)
