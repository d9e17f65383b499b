"""Pod workers: one asyncio task per pod drives it from its spec to its running state.

Each :class:`PodWorker` is level-triggered like upstream's ``syncPod``: on every wake-up
(the pod changed, a container exited, a probe result changed, a back-off expired) it
compares what should run with what runs, takes the next steps (volumes, sandbox, init
containers in order, containers with restart policy and crash-loop back-off), and writes the
pod's status when it changed. On deletion it runs preStop hooks, stops containers within
the grace period, removes the sandbox and confirms the deletion to the API server.
:class:`PodWorkers` is the map that owns the tasks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import shutil
import time
from typing import Any, Protocol

import orjson

from tinykube import aio
from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.api import pods as podutil
from tinykube.api.quantity import cpu_millis, parse_quantity
from tinykube.kubelet import env as envmod
from tinykube.kubelet import status as statusmod
from tinykube.kubelet import termination
from tinykube.kubelet.backoff import Backoff, format_duration
from tinykube.kubelet.probes import PodProbes, Result, TITLE, run_probe
from tinykube.kubelet.runtime.interface import (
    ContainerConfig, ContainerState, ContainerStatus, CRIError, ImageService, ImageSpec, LinuxResources, Mount,
    PodSandboxConfig, RuntimeService,
)
from tinykube.kubelet.status import ContainerRecord
from tinykube.kubelet.volumes import VolumeContext, VolumeError, setup_volumes, teardown_volumes

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RETRY_SECONDS = 2.0
DEFAULT_GRACE = 30
TERMINATION_LOG = "/dev/termination-log"


class WorkerHost(Protocol):
    """What a pod worker needs from its kubelet."""

    runtime: RuntimeService
    images: ImageService
    backoff: Backoff
    node_name: str
    host_ip: str
    runtime_prefix: str
    root_dir: str

    def record_event(self, obj: Obj, type_: str, reason: str, message: str) -> None: ...

    async def fetch(self, resource: str, namespace: str, name: str) -> Obj | None: ...

    async def request_token(self, namespace: str, sa: str, audience: str | None, seconds: int) -> str: ...

    async def env_sources(self, pod: Obj) -> envmod.EnvSources: ...

    def sandbox_config(self, pod: Obj) -> PodSandboxConfig: ...

    async def push_status(self, pod: Obj, status: Obj) -> None: ...

    async def confirm_deletion(self, pod: Obj) -> None: ...

    def admit(self, pod: Obj) -> tuple[str, str] | None: ...

    def observe_pod_started(self, pod: Obj, seconds: float) -> None: ...

    def observe_probe(self, pod: Obj, kind: str, container: str, result: Result) -> None: ...

    def observe_sync(self, operation: str, seconds: float) -> None: ...

    def can_isolate(self) -> bool: ...

    def shared_network(self) -> str: ...


def pod_full_name(pod: Obj) -> str:
    return f"{meta.name(pod)}_{meta.namespace(pod)}({meta.uid(pod)})"


def container_resources(c: Obj, pods_limit: int = 0) -> LinuxResources:
    """CRI resources from requests/limits: cpu quota over a 100 ms period, cpu shares, memory."""
    res = c.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out = LinuxResources(cpu_period=100000, pids_limit=pods_limit)
    if "cpu" in limits:
        out.cpu_quota = max(1000, cpu_millis(limits["cpu"]) * 100)
    cpu_req = requests.get("cpu", limits.get("cpu"))
    out.cpu_shares = max(2, cpu_millis(cpu_req) * 1024 // 1000) if cpu_req is not None else 2
    if "memory" in limits:
        out.memory_limit_in_bytes = int(parse_quantity(limits["memory"]))
    return out


SYNCED_METADATA = ("labels", "annotations", "deletionTimestamp", "deletionGracePeriodSeconds")


def needs_sync(old: Obj, new: Obj) -> bool:
    """Whether an update of a pod from its source is one the pod's sync acts on.

    A new status alone (most often the kubelet's own write coming back through the watch)
    is not: upstream's pod config treats it as a reconcile rather than an update. Readiness
    gates are the exception: other writers set the conditions they wait for.
    """
    if podutil.spec(old) != podutil.spec(new):
        return True
    old_meta, new_meta = meta.metadata(old), meta.metadata(new)
    if any(old_meta.get(k) != new_meta.get(k) for k in SYNCED_METADATA):
        return True
    return any(podutil.condition_status(old, g) != podutil.condition_status(new, g)
               for g in podutil.readiness_gates(new))


def spec_hash(c: Obj) -> str:
    """What upstream's container hash covers: a change means the container must restart."""
    return hashlib.sha256(orjson.dumps(c, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


class PodWorker:
    def __init__(self, host: WorkerHost, pod: Obj, *, source: str = "api") -> None:
        self.host = host
        self.pod = pod
        self.uid = meta.uid(pod)
        self.source = source
        self.wake = asyncio.Event()
        self.removed = False
        self.finished = asyncio.Event()
        self.sandbox_id = ""
        self.sandbox_ip = ""
        self.records: dict[str, ContainerRecord] = {}
        self.waiters: dict[str, asyncio.Task] = {}
        self.volume_paths: dict[str, str] | None = None
        self.volume_ctx: VolumeContext | None = None
        self.rejection: tuple[str, str] | None = None
        self.admitted = False
        self.start_time = ""
        self.first_seen = time.monotonic()
        self.reported_running = False
        self.phase = "Pending"
        self.probes = PodProbes(self.wake.set, self._probe_failed, self._probe_record)
        self.task: asyncio.Task | None = None
        self.pod_dir = os.path.join(host.root_dir, "pods", self.uid)
        self.termination_messages: dict[str, str] = {}  # exited container id -> its message

    # -- wiring ------------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod-worker-{meta.key(self.pod)}")

    def update(self, pod: Obj) -> None:
        """Keep the pod's latest copy; wake the worker only for a change it acts on."""
        old, self.pod = self.pod, pod
        if needs_sync(old, pod):
            self.wake.set()

    def remove(self) -> None:
        """The pod is gone from its source: stop it without confirming to the API."""
        self.removed = True
        self.wake.set()

    @property
    def deleting(self) -> bool:
        return self.removed or meta.is_deleting(self.pod)

    async def _run(self) -> None:
        operation = "create"
        try:
            while True:
                self.wake.clear()
                began = time.monotonic()
                try:
                    if self.deleting:
                        await self.terminate()
                        return
                    delay = await self.sync()
                except (CRIError, VolumeError, envmod.EnvError, OSError, ConnectionError, ApiError) as exc:
                    log.warning("sync of pod %s failed: %s", meta.key(self.pod), exc)
                    delay = RETRY_SECONDS
                self.host.observe_sync(operation, time.monotonic() - began)
                operation = "update" if self.wake.is_set() else "sync"
                try:
                    await aio.wait_for(self.wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            await self._release()
            self.finished.set()

    # -- sync --------------------------------------------------------------------------
    async def sync(self) -> float | None:
        """One pass towards the pod's desired state; returns when to look again (None = on event)."""
        pod = self.pod
        if not self.admitted:
            self.rejection = self.host.admit(pod)
            self.admitted = True
        if self.rejection is not None:
            await self._push_rejected()
            return None
        if self.phase in ("Succeeded", "Failed"):
            await self._stop_everything(grace=0)
            await self._push()
            return None
        if not self.start_time:
            self.start_time = meta.now()
        if self.volume_paths is None:
            if not await self._setup_volumes():
                await self._push()
                return RETRY_SECONDS * 5
        if not self.sandbox_id:
            if not await self._create_sandbox():
                await self._push()
                return RETRY_SECONDS * 5
        delays: list[float] = []
        for ec in podutil.ephemeral_containers(pod):  # before init containers, to debug a pod stuck in them
            await self._sync_container(ec, delays, init=False, policy="Never")
        if await self._sync_init_containers(delays):
            for c in podutil.containers(pod):
                await self._sync_container(c, delays, init=False)
        status = await self._push()
        if status.get("phase") in ("Succeeded", "Failed"):
            self.phase = status["phase"]
            self.wake.set()
        return min(delays) if delays else None

    async def _setup_volumes(self) -> bool:
        pod = self.pod
        ns = meta.namespace(pod)
        self.volume_ctx = VolumeContext(
            pod=pod, pod_dir=self.pod_dir,
            fetch=lambda res, name: self.host.fetch(res, ns, name),
            request_token=lambda sa, aud, secs: self.host.request_token(ns, sa, aud, secs),
            can_mount=self.host.can_isolate(), host_ip=self.host.host_ip, pod_ip=self.sandbox_ip)
        try:
            self.volume_paths = await setup_volumes(podutil.spec(pod).get("volumes") or [], self.volume_ctx)
        except VolumeError as exc:
            self.host.record_event(pod, "Warning", "FailedMount", str(exc))
            return False
        return True

    async def _create_sandbox(self) -> bool:
        pod = self.pod
        try:
            self.sandbox_id = await self.host.runtime.run_pod_sandbox(self.host.sandbox_config(pod))
        except CRIError as exc:
            self.host.record_event(pod, "Warning", "FailedCreatePodSandBox", exc.message)
            return False
        st = await self.host.runtime.pod_sandbox_status(self.sandbox_id)
        self.sandbox_ip = st.ip or self.host.host_ip
        why = self.host.shared_network()
        if why and not podutil.spec(pod).get("hostNetwork"):
            self.host.record_event(pod, "Warning", "HostNetwork",
                                   f"{why}: the pod shares the host's network namespace and IP")
        if self.volume_ctx is not None:
            self.volume_ctx.pod_ip = self.sandbox_ip
        return True

    async def _sync_init_containers(self, delays: list[float]) -> bool:
        """Run init containers one at a time; True once all of them completed."""
        for c in podutil.init_containers(self.pod):
            rec = self.records.get(c["name"])
            if podutil.is_sidecar(c):
                await self._sync_container(c, delays, init=False, policy="Always")
                rec = self.records.get(c["name"])
                if rec is None or rec.current is None or rec.current.state != ContainerState.CONTAINER_RUNNING:
                    return False
                continue
            if rec is not None and rec.current is not None and rec.current.state == ContainerState.CONTAINER_EXITED \
                    and rec.current.exit_code == 0:
                continue
            await self._sync_container(c, delays, init=True)
            rec = self.records.get(c["name"])
            if not (rec and rec.current and rec.current.state == ContainerState.CONTAINER_EXITED
                    and rec.current.exit_code == 0):
                return False
        return True

    async def _sync_container(self, c: Obj, delays: list[float], *, init: bool, policy: str | None = None) -> None:
        name = c["name"]
        rec = self.records.setdefault(name, ContainerRecord(name))
        policy = policy or podutil.spec(self.pod).get("restartPolicy") or "Always"
        if init and policy == "Always":
            policy = "OnFailure"  # init containers are retried on failure only
        if rec.current is None:
            await self._start_container(c, rec)
            if rec.waiting_reason:
                delays.append(RETRY_SECONDS * 5)
            return
        rec.current = await self._container_status(c, rec.current.id)
        cur = rec.current
        if cur.state == ContainerState.CONTAINER_RUNNING and rec.spec_hash and rec.spec_hash != spec_hash(c):
            self.host.record_event(self.pod, "Normal", "Killing",
                                   f"Container {name} definition changed, will be restarted")
            await self.probes.stop(name)
            await self._kill_container(c, rec, self._grace(c))
            await self._restart(c, rec)
            return
        if cur.state == ContainerState.CONTAINER_RUNNING:
            failed = self.probes.liveness_failed(c)
            if failed:
                self.host.record_event(self.pod, "Normal", "Killing",
                                       f"Container {name} failed {failed} probe, will be restarted")
                await self.probes.stop(name)
                await self._kill_container(c, rec, self._grace(c))
                rec.current = await self._container_status(c, cur.id)
                cur = rec.current
            else:
                rec.ready = self.probes.ready(c)
                rec.started = self.probes.started(c)
                return
        if cur.state != ContainerState.CONTAINER_EXITED:
            return
        rec.ready = rec.started = False
        if not (policy == "Always" or (policy == "OnFailure" and cur.exit_code != 0)):
            rec.waiting_reason = ""
            return
        key = f"{self.uid}/{name}"
        if self.host.backoff.in_backoff_since(key, cur.finished_at):
            wait = self.host.backoff.remaining(key, cur.finished_at)
            if rec.waiting_reason != "CrashLoopBackOff":
                self.host.record_event(self.pod, "Warning", "BackOff",
                                       f"Back-off restarting failed container {name} in pod {pod_full_name(self.pod)}")
            rec.waiting_reason = "CrashLoopBackOff"
            rec.waiting_message = (f"back-off {format_duration(self.host.backoff.get(key))} restarting failed "
                                   f"container={name} pod={pod_full_name(self.pod)}")
            delays.append(wait + 0.01)
            return
        self.host.backoff.next(key)
        await self._restart(c, rec)

    async def _restart(self, c: Obj, rec: ContainerRecord) -> None:
        old = rec.last_terminated
        rec.last_terminated = rec.current
        rec.current = None
        rec.restart_count += 1
        if old is not None:
            self.termination_messages.pop(old.id, None)
            await self.host.runtime.remove_container(old.id)
        await self._start_container(c, rec)

    def _grace(self, c: Obj) -> float:
        grace = meta.metadata(self.pod).get("deletionGracePeriodSeconds")
        if grace is None:
            grace = podutil.spec(self.pod).get("terminationGracePeriodSeconds", DEFAULT_GRACE)
        return float(grace if grace is not None else DEFAULT_GRACE)

    # -- containers --------------------------------------------------------------------
    async def _container_config(self, c: Obj, rec: ContainerRecord) -> ContainerConfig:
        sources = await self.host.env_sources(self.pod)
        sources.pod_ip, sources.host_ip = self.sandbox_ip, self.host.host_ip
        envs = envmod.resolve(self.pod, c, sources)
        mounts: list[Mount] = []
        for vm in c.get("volumeMounts") or []:
            base = (self.volume_paths or {}).get(vm.get("name", ""))
            if base is None:
                raise envmod.EnvError(f'unable to find volume "{vm.get("name")}" to mount into container "{c["name"]}"')
            host_path = os.path.join(base, vm["subPath"]) if vm.get("subPath") else base
            if vm.get("subPath") and not os.path.exists(host_path):
                os.makedirs(host_path)  # upstream creates a missing subPath as a directory
            mounts.append(Mount(vm.get("mountPath", ""), host_path, bool(vm.get("readOnly"))))
        message_mount = await asyncio.to_thread(termination.prepare, c, self.pod_dir, rec.restart_count)
        if message_mount is not None:
            mounts.append(message_mount)
        sec = {**(podutil.spec(self.pod).get("securityContext") or {}), **(c.get("securityContext") or {})}
        return ContainerConfig(
            name=c["name"], image=c.get("image", ""),
            command=envmod.expand_command(list(c.get("command") or []), envs),
            args=envmod.expand_command(list(c.get("args") or []), envs),
            working_dir=c.get("workingDir", ""), envs=envs, mounts=mounts,
            log_path=os.path.join(c["name"], f"{rec.restart_count}.log"), attempt=rec.restart_count,
            stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")),
            run_as_user=sec.get("runAsUser"), run_as_group=sec.get("runAsGroup"),
            resources=container_resources(c))

    async def _start_container(self, c: Obj, rec: ContainerRecord) -> None:
        runtime = self.host.runtime
        pod, name = self.pod, c["name"]
        try:
            config = await self._container_config(c, rec)
        except envmod.EnvError as exc:
            self._fail_waiting(rec, "CreateContainerConfigError", str(exc))
            return
        image = c.get("image", "")
        if await self.host.images.image_status(ImageSpec(image)) is None:
            await self.host.images.pull_image(ImageSpec(image))
        self.host.record_event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        try:
            cid = await runtime.create_container(self.sandbox_id, config, self.host.sandbox_config(pod))
        except CRIError as exc:
            self._fail_waiting(rec, exc.reason, exc.message)
            return
        self.host.record_event(pod, "Normal", "Created", f"Created container {name}")
        rec.waiting_reason = rec.waiting_message = ""
        try:
            await runtime.start_container(cid)
        except CRIError as exc:
            self.host.record_event(pod, "Warning", "Failed", f"Error: {exc.message}")
        rec.current = await self._container_status(c, cid)
        rec.spec_hash = spec_hash(c)
        self._watch_exit(cid)
        if rec.current.state == ContainerState.CONTAINER_RUNNING:
            self.host.record_event(pod, "Normal", "Started", f"Started container {name}")
            await self.probes.start(c, cid, self.sandbox_ip, lambda cmd, t: runtime.exec_sync(cid, cmd, t))
            await self._post_start(c, rec)
            rec.ready = self.probes.ready(c)
            rec.started = self.probes.started(c)

    async def _container_status(self, c: Obj, cid: str) -> ContainerStatus:
        """The runtime's status of a container; once it exited, with its termination
        message (read once per container)."""
        status = await self.host.runtime.container_status(cid)
        if status.state != ContainerState.CONTAINER_EXITED:
            return status
        if cid not in self.termination_messages:
            self.termination_messages[cid] = (await termination.with_message(status, c, self.pod_dir)).message
        message = self.termination_messages[cid]
        return status if message == status.message else dataclasses.replace(status, message=message)

    def _fail_waiting(self, rec: ContainerRecord, reason: str, message: str) -> None:
        rec.waiting_reason, rec.waiting_message = reason, message
        self.host.record_event(self.pod, "Warning", "Failed", f"Error: {message}")

    def _watch_exit(self, cid: str) -> None:
        async def wait() -> None:
            await self.host.runtime.wait_container(cid)
            self.wake.set()
        old = self.waiters.pop(cid, None)
        if old is not None:
            old.cancel()
        self.waiters[cid] = asyncio.create_task(wait(), name=f"wait-{cid[:12]}")

    async def _run_hook(self, c: Obj, cid: str, handler: Obj, timeout: float) -> str:
        """Run a lifecycle hook; returns an error message or ''."""
        if "exec" in handler:
            probe = {"exec": handler["exec"], "timeoutSeconds": max(1, int(timeout))}
        elif "httpGet" in handler:
            probe = {"httpGet": handler["httpGet"], "timeoutSeconds": max(1, int(timeout))}
        elif "sleep" in handler:
            await asyncio.sleep(min(timeout, float(handler["sleep"].get("seconds", 0))))
            return ""
        else:
            return ""
        result, message = await run_probe(probe, c, self.sandbox_ip,
                                          lambda cmd, t: self.host.runtime.exec_sync(cid, cmd, t))
        return "" if result == Result.SUCCESS else (message or "hook failed")

    async def _post_start(self, c: Obj, rec: ContainerRecord) -> None:
        handler = (c.get("lifecycle") or {}).get("postStart")
        if not handler or rec.current is None:
            return
        error = await self._run_hook(c, rec.current.id, handler, 30)
        if error:
            self.host.record_event(self.pod, "Warning", "FailedPostStartHook", error)
            await self._kill_container(c, rec, 0)

    async def _kill_container(self, c: Obj, rec: ContainerRecord, grace: float) -> None:
        if rec.current is None:
            return
        cid = rec.current.id
        status = await self.host.runtime.container_status(cid)
        if status.state != ContainerState.CONTAINER_RUNNING:
            return
        started = time.monotonic()
        handler = (c.get("lifecycle") or {}).get("preStop")
        if handler and grace > 0:
            try:
                error = await aio.wait_for(self._run_hook(c, cid, handler, grace), grace)
            except asyncio.TimeoutError:
                error = f"PreStopHook didn't complete within {int(grace)} seconds"
            if error:
                self.host.record_event(self.pod, "Warning", "FailedPreStopHook", error)
        remaining = max(0.0, grace - (time.monotonic() - started)) if grace > 0 else 0.0
        if grace > 0 and remaining < 2:
            remaining = 2.0  # upstream's minimum grace after the hook
        await self.host.runtime.stop_container(cid, remaining)
        rec.current = await self._container_status(c, cid)

    # -- status ------------------------------------------------------------------------
    def build_status(self) -> Obj:
        pod = self.pod
        prefix = self.host.runtime_prefix
        init_default = "PodInitializing"
        init_statuses = [statusmod.api_container_status(c, self.records.get(c["name"]) or ContainerRecord(c["name"]),
                                                        prefix, init_default)
                         for c in podutil.init_containers(pod)]
        init_done = not statusmod.init_pending(pod, init_statuses)
        default = "ContainerCreating" if init_done else "PodInitializing"
        statuses = [statusmod.api_container_status(c, self.records.get(c["name"]) or ContainerRecord(c["name"]),
                                                   prefix, default)
                    for c in podutil.containers(pod)]
        phase = statusmod.pod_phase(pod, init_statuses, statuses)
        if self.phase in ("Succeeded", "Failed"):
            phase = self.phase
        conditions = statusmod.pod_conditions(pod, phase, init_statuses, statuses, bool(self.sandbox_id))
        old = podutil.status(pod)
        status: Obj = {
            "phase": phase,
            "conditions": statusmod.merge_conditions(old, conditions, meta.now()),
            "hostIP": self.host.host_ip, "hostIPs": [{"ip": self.host.host_ip}],
            "startTime": self.start_time or old.get("startTime") or meta.now(),
            "containerStatuses": statuses,
            "qosClass": podutil.qos_class(pod),
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        ephemeral = [{**statusmod.api_container_status(c, self.records.get(c["name"]) or ContainerRecord(c["name"]),
                                                       prefix, default), "ready": False}  # never probed
                     for c in podutil.ephemeral_containers(pod)]
        if ephemeral:
            status["ephemeralContainerStatuses"] = ephemeral
        if self.sandbox_ip:
            status["podIP"] = self.sandbox_ip
            status["podIPs"] = [{"ip": self.sandbox_ip}]
        return status

    async def _push(self) -> Obj:
        status = self.build_status()
        if not self.reported_running and status["phase"] == "Running":
            self.reported_running = True
            self.host.observe_pod_started(self.pod, time.monotonic() - self.first_seen)
        await self.host.push_status(self.pod, status)
        return status

    async def _push_rejected(self) -> None:
        assert self.rejection is not None
        reason, message = self.rejection
        status: Obj = {"phase": "Failed", "reason": reason, "message": message,
                       "hostIP": self.host.host_ip, "hostIPs": [{"ip": self.host.host_ip}],
                       "startTime": self.start_time or meta.now(),
                       "conditions": podutil.status(self.pod).get("conditions") or []}
        self.start_time = status["startTime"]
        await self.host.push_status(self.pod, status)

    def _probe_failed(self, kind: str, name: str, message: str) -> None:
        self.host.record_event(self.pod, "Warning", "Unhealthy", f"{TITLE[kind]} probe failed: {message}")

    def _probe_record(self, kind: str, name: str, result: Result) -> None:
        self.host.observe_probe(self.pod, kind, name, result)

    # -- termination -------------------------------------------------------------------
    async def _stop_everything(self, grace: float) -> None:
        """Stop all containers (in parallel, each with the grace period) and the sandbox."""
        await self.probes.stop_all()
        running = []
        for name, rec in self.records.items():
            if rec.current is not None and rec.current.state == ContainerState.CONTAINER_RUNNING:
                if grace > 0:
                    self.host.record_event(self.pod, "Normal", "Killing", f"Stopping container {name}")
                running.append(self._kill_container(podutil.container(self.pod, name) or {"name": name}, rec, grace))
        await asyncio.gather(*running)
        for name, rec in self.records.items():
            if rec.current is not None:
                rec.current = await self._container_status(podutil.container(self.pod, name) or {"name": name},
                                                           rec.current.id)
            rec.ready = False
        if self.sandbox_id:
            await self.host.runtime.stop_pod_sandbox(self.sandbox_id)

    async def terminate(self) -> None:
        pod = self.pod
        await self._stop_everything(self._grace({}) if not self.removed else 0)
        if not self.removed:
            try:
                if self.rejection is None:
                    await self._push()
                await self.host.confirm_deletion(pod)
            except ConnectionError as exc:
                log.warning("confirming deletion of %s: %s", meta.key(pod), exc)

    async def _release(self) -> None:
        """Free everything the pod held on the node."""
        await self.probes.stop_all()
        for task in self.waiters.values():
            task.cancel()
        for task in self.waiters.values():
            try:
                await task
            except (asyncio.CancelledError, CRIError):
                pass
        self.waiters.clear()
        if self.sandbox_id:
            await self.host.runtime.remove_pod_sandbox(self.sandbox_id)
            self.sandbox_id = ""
        if self.volume_ctx is not None:
            teardown_volumes(self.volume_ctx)
        shutil.rmtree(self.pod_dir, ignore_errors=True)
        self.host.backoff.forget(self.uid)

    def container_record(self, name: str) -> ContainerRecord | None:
        return self.records.get(name)


class PodWorkers:
    """The pod-workers map: uid -> worker, each worker's task owned here."""

    def __init__(self, host: WorkerHost) -> None:
        self.host = host
        self.workers: dict[str, PodWorker] = {}
        self.stopping = False  # stop_all() has started: no new workers

    def update(self, pod: Obj, source: str = "api") -> None:
        uid = meta.uid(pod)
        worker = self.workers.get(uid)
        if worker is None:
            if podutil.is_terminal(pod) and not meta.is_deleting(pod):
                return  # finished before this kubelet saw it
            if self.stopping:
                log.info("kubelet is stopping: not starting pod %s", meta.key(pod))
                return
            worker = self.workers[uid] = PodWorker(self.host, pod, source=source)
            worker.start()
            worker.task.add_done_callback(lambda _t, u=uid, w=worker: self._done(u, w))
        else:
            worker.update(pod)

    def _done(self, uid: str, worker: PodWorker) -> None:
        if self.workers.get(uid) is worker:
            del self.workers[uid]
        task = worker.task
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("pod worker of %s died", meta.key(worker.pod), exc_info=task.exception())

    def remove(self, pod: Obj) -> None:
        worker = self.workers.get(meta.uid(pod))
        if worker is not None:
            worker.remove()

    def find(self, namespace: str, name: str) -> PodWorker | None:
        for w in self.workers.values():
            if meta.namespace(w.pod) == namespace and meta.name(w.pod) == name:
                return w
        return None

    async def stop_all(self) -> None:
        """Stop every pod on the node (kubelet shutdown), waiting for each to be cleaned up."""
        self.stopping = True
        for w in list(self.workers.values()):
            w.remove()
        for w in list(self.workers.values()):
            if w.task is not None:
                await asyncio.gather(w.task, return_exceptions=True)
