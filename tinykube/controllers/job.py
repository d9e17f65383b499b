"""The job controller: run pods to completion.

A Job keeps ``min(parallelism, completions - succeeded)`` pods active (``parallelism``
while nothing succeeded when ``completions`` is unset: the work-queue pattern). Finished
pods are counted exactly once, as upstream: each pod carries the
``batch.kubernetes.io/job-tracking`` finalizer; a finished pod's uid is first recorded in
``status.uncountedTerminatedPods``, then its finalizer is removed, then it moves into
``succeeded``/``failed``. Failures beyond ``backoffLimit`` or running past
``activeDeadlineSeconds`` set ``FailureTarget`` and delete the active pods; success sets
``SuccessCriteriaMet``; the terminal ``Failed``/``Complete`` condition (and
``completionTime``) follows once no pod is left running. Replacement pods after failures
wait an exponential back-off (``job_pod_failure_backoff`` doubling, at most 6 minutes).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import Any

from tinykube.api import meta, pods
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import util
from tinykube.controllers.base import (BaseController, ControllerContext, enqueue_controller_of,
                                       owner_uid_index)
from tinykube.controllers.expectations import ControllerExpectations
from tinykube.controllers.podcontrol import RealPodControl, pod_from_template, slow_start_batch

Obj = dict[str, Any]
NAME = "job-controller"
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
MAX_BACKOFF = 360.0
COMPLETIONS_REACHED = "Reached expected number of succeeded pods"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"


def is_indexed(job: Obj) -> bool:
    return util.spec(job).get("completionMode") == "Indexed"


def pod_index(pod: Obj) -> int | None:
    value = meta.annotations(pod).get(INDEX_KEY) or meta.labels(pod).get(INDEX_KEY)
    return int(value) if value is not None and value.isdigit() else None


def parse_indexes(text: str | None) -> set[int]:
    """``"0-2,5"`` -> {0, 1, 2, 5} (status.completedIndexes)."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return out


def format_indexes(indexes: set[int]) -> str:
    """{0, 1, 2, 5} -> ``"0-2,5"``: ascending intervals, as upstream compresses them."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def indexed_template(template: Obj, job: Obj, index: int) -> Obj:
    """The pod template for one completion index (annotation, label, hostname, env)."""
    out = copy.deepcopy(template)
    tmeta = out.setdefault("metadata", {})
    tmeta["annotations"] = {**(tmeta.get("annotations") or {}), INDEX_KEY: str(index)}
    tmeta["labels"] = {**(tmeta.get("labels") or {}), INDEX_KEY: str(index)}
    spec = out.setdefault("spec", {})
    spec["hostname"] = f"{meta.name(job)}-{index}"
    if util.spec(job).get("subdomain"):
        spec["subdomain"] = util.spec(job)["subdomain"]
    env = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "fieldPath": f"metadata.annotations['{INDEX_KEY}']"}}}
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if not any(e.get("name") == env["name"] for e in container.get("env") or []):
            container["env"] = [*(container.get("env") or []), env]
    return out


def job_int(job: Obj, field: str, default: int | None) -> int | None:
    value = util.spec(job).get(field)
    return default if value is None else int(value)


def is_finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in util.status(job).get("conditions") or [])


def has_condition(status: Obj, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in status.get("conditions") or [])


def add_condition(status: Obj, type_: str, reason: str, message: str) -> None:
    if has_condition(status, type_):
        return
    now = meta.now()
    status.setdefault("conditions", []).append(
        {"type": type_, "status": "True", "reason": reason, "message": message,
         "lastProbeTime": now, "lastTransitionTime": now})


def job_labels(job: Obj) -> dict[str, str]:
    uid, name = meta.uid(job), meta.name(job)
    return {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "job-name": name}


def wanted_active(job: Obj, succeeded: int) -> int:
    """How many pods should run now (upstream's parallelism/completions arithmetic)."""
    if util.spec(job).get("suspend"):
        return 0
    parallelism = job_int(job, "parallelism", 1) or 0
    completions = job_int(job, "completions", None)
    if completions is None:
        return parallelism if succeeded == 0 else 0
    return max(min(parallelism, completions - succeeded), 0)


def success_reached(job: Obj, succeeded: int, active: int) -> bool:
    completions = job_int(job, "completions", None)
    if completions is None:
        return succeeded > 0 and active == 0
    return succeeded >= completions


class JobController(BaseController):
    """Reconciles Jobs with their pods."""

    def __init__(self, ctx: ControllerContext, workers: int = 5,
                 backoff: float = 10.0) -> None:
        super().__init__(ctx, NAME, workers)
        self.backoff = backoff
        self.expectations = ControllerExpectations()
        self._last_failure: dict[str, tuple[int, float]] = {}  # key -> (failed, first seen)
        self.job_informer = ctx.informers.informer("jobs", "batch")
        self.pod_informer = ctx.informers.informer("pods")
        owner_uid_index(self.pod_informer)
        self.jobs = ctx.client.resource("jobs", "batch")
        self.pods = ctx.client.resource("pods")
        self.recorder = ctx.recorder(NAME)
        self.pod_control = RealPodControl(ctx.client, self.recorder)
        self.job_informer.add_handlers(on_add=lambda j: self.enqueue(meta.key(j)),
                                       on_update=lambda o, n: self.enqueue(meta.key(n)),
                                       on_delete=self._job_deleted)
        enqueue_controller_of(self.pod_informer, "Job", self.enqueue, self.expectations)

    def _job_deleted(self, job: Obj) -> None:
        self.expectations.delete_expectations(meta.key(job))
        self._last_failure.pop(meta.key(job), None)

    # sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.job_informer.cache.get(key)
        if cached is None:
            self.expectations.delete_expectations(key)
            return
        job = copy.deepcopy(cached)
        owned = self.pod_informer.cache.by_index("owner-uid", meta.uid(job))
        if is_finished(job):
            await self._remove_finalizers([p for p in owned
                                           if TRACKING_FINALIZER in meta.finalizers(p)])
            return
        status = copy.deepcopy(util.status(job))
        await self._track_finished(job, status, owned)
        active = [p for p in owned if util.is_pod_active(p)]
        terminating = [p for p in owned if meta.deletion_timestamp(p) is not None
                       and not pods.is_terminal(p)]
        succeeded, failed = int(status.get("succeeded") or 0), int(status.get("failed") or 0)
        if not status.get("startTime") and not util.spec(job).get("suspend"):
            status["startTime"] = meta.now()
        failure = self._failure_reason(job, status, failed)
        if failure is not None and not has_condition(status, "FailureTarget"):
            add_condition(status, "FailureTarget", *failure)
        if has_condition(status, "FailureTarget"):
            await self._delete_pods(job, active)
            active = []
        elif success_reached(job, succeeded, len(active)):
            add_condition(status, "SuccessCriteriaMet", "CompletionsReached",
                          COMPLETIONS_REACHED)
            await self._delete_pods(job, active)  # surplus pods once completions are met
            active = []
        created = 0
        if not has_condition(status, "FailureTarget") and \
                not has_condition(status, "SuccessCriteriaMet") and \
                self.expectations.satisfied(key):
            active, created = await self._manage(
                job, key, active, succeeded, failed, parse_indexes(status.get("completedIndexes")))
        if not created:
            self._finish_if_done(job, status, active, terminating)
        status["active"] = len(active) + created
        status["ready"] = sum(1 for p in active if util.is_pod_ready(p))
        status["terminating"] = len(terminating)
        status.setdefault("succeeded", 0)
        status.setdefault("failed", 0)
        await self._write_status(job, status)
        self._requeue_deadline(job, status)

    def _failure_reason(self, job: Obj, status: Obj, failed: int) -> tuple[str, str] | None:
        if failed > (job_int(job, "backoffLimit", 6) or 0):
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = job_int(job, "activeDeadlineSeconds", None)
        start = util.parse_time(status.get("startTime"))
        if deadline is not None and start is not None and \
                util.utcnow() - start >= dt.timedelta(seconds=deadline):
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        return None

    def _finish_if_done(self, job: Obj, status: Obj, active: list[Obj],
                        terminating: list[Obj]) -> None:
        if active or terminating:
            return
        if has_condition(status, "FailureTarget"):
            target = next(c for c in status["conditions"] if c.get("type") == "FailureTarget")
            add_condition(status, "Failed", target.get("reason", ""), target.get("message", ""))
            self.recorder.event(job, "Warning", target.get("reason", ""),
                                target.get("message", ""))
        elif has_condition(status, "SuccessCriteriaMet"):
            add_condition(status, "Complete", "CompletionsReached", COMPLETIONS_REACHED)
            status["completionTime"] = meta.now()
            self.recorder.event(job, "Normal", "Completed", "Job completed")

    def _requeue_deadline(self, job: Obj, status: Obj) -> None:
        deadline = job_int(job, "activeDeadlineSeconds", None)
        start = util.parse_time(status.get("startTime"))
        if deadline is None or start is None or has_condition(status, "FailureTarget"):
            return
        left = (start + dt.timedelta(seconds=deadline) - util.utcnow()).total_seconds()
        self.enqueue_after(meta.key(job), max(left, 0) + 0.1)

    # pods -------------------------------------------------------------------------------

    async def _track_finished(self, job: Obj, status: Obj, owned: list[Obj]) -> None:
        """Count finished pods exactly once via uncountedTerminatedPods and the finalizer."""
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        uncounted.setdefault("succeeded", [])
        uncounted.setdefault("failed", [])
        known = set(uncounted["succeeded"]) | set(uncounted["failed"])
        newly = False
        for pod in owned:
            if TRACKING_FINALIZER not in meta.finalizers(pod) or meta.uid(pod) in known:
                continue
            phase = util.pod_phase(pod)
            if phase == "Succeeded" or phase == "Failed":
                uncounted["succeeded" if phase == "Succeeded" else "failed"].append(meta.uid(pod))
                newly = True
                index = pod_index(pod)
                if phase == "Succeeded" and is_indexed(job) and index is not None:
                    done = parse_indexes(status.get("completedIndexes")) | {index}
                    status["completedIndexes"] = format_indexes(done)
            elif meta.deletion_timestamp(pod) is not None:
                uncounted["failed"].append(meta.uid(pod))  # deleted before finishing
                newly = True
        if newly:
            await self._write_status(job, status)
        listed = set(uncounted["succeeded"]) | set(uncounted["failed"])
        await self._remove_finalizers([p for p in owned if meta.uid(p) in listed
                                       and TRACKING_FINALIZER in meta.finalizers(p)])
        for kind in ("succeeded", "failed"):
            status[kind] = int(status.get(kind) or 0) + len(uncounted[kind])
        if is_indexed(job):  # each index counts once, however many pods completed it
            status["succeeded"] = len(parse_indexes(status.get("completedIndexes")))
        status["uncountedTerminatedPods"] = {}

    async def _remove_finalizers(self, victims: list[Obj]) -> None:
        async def remove(pod: Obj) -> None:
            remaining = [f for f in meta.finalizers(pod) if f != TRACKING_FINALIZER]
            with ignore_not_found():
                await self.pods.patch(meta.name(pod), {"metadata": {
                    "finalizers": remaining or None, "uid": meta.uid(pod)}},
                    namespace=meta.namespace(pod), patch_type="merge")
        await asyncio.gather(*(remove(p) for p in victims))

    async def _manage(self, job: Obj, key: str, active: list[Obj], succeeded: int,
                      failed: int, completed: set[int]) -> tuple[list[Obj], int]:
        """Create or delete pods toward the wanted count; (remaining active, created)."""
        want = wanted_active(job, succeeded)
        diff = want - len(active)
        missing = self._missing_indexes(job, active, completed)
        if diff > 0 and is_indexed(job):
            diff = min(diff, len(missing))
        if diff > 0:
            if failed and self._in_backoff(job, failed):
                return active, 0
            self.expectations.expect_creations(key, diff)
            template = copy.deepcopy(util.spec(job).get("template") or {})
            tmeta = template.setdefault("metadata", {})
            tmeta["labels"] = {**(tmeta.get("labels") or {}), **job_labels(job)}
            tmeta["finalizers"] = list(tmeta.get("finalizers") or []) + [TRACKING_FINALIZER]

            indexes = iter(missing)

            async def create() -> None:
                tmpl = template
                gen_name = None
                if is_indexed(job):
                    index = next(indexes)
                    tmpl = indexed_template(template, job, index)
                    gen_name = f"{meta.name(job)}-{index}-"
                await self.pod_control.create_pod(
                    pod_from_template(tmpl, job, generate_name=gen_name), job)

            created, err = await slow_start_batch(diff, 1, create)
            if created < diff:
                self.expectations.lower_expectations(key, add=diff - created)
            if err is not None:
                raise err
            return active, created
        if diff < 0:
            extra = sorted(active, key=util.creation_time, reverse=True)[:-diff]
            await self._delete_pods(job, extra)
            active = [p for p in active if p not in extra]
        return active, 0

    @staticmethod
    def _missing_indexes(job: Obj, active: list[Obj], completed: set[int]) -> list[int]:
        """Indexes neither completed nor running, lowest first (Indexed jobs only)."""
        if not is_indexed(job):
            return []
        running = {pod_index(p) for p in active}
        total = job_int(job, "completions", 1) or 0
        return [i for i in range(total) if i not in completed and i not in running]

    def _in_backoff(self, job: Obj, failed: int) -> bool:
        """Delay replacements after failures (10 s, 20 s, ... up to 6 min upstream)."""
        delay = min(self.backoff * 2 ** (failed - 1), MAX_BACKOFF)
        last = self._last_failure.get(meta.key(job))
        now = asyncio.get_running_loop().time()
        if last is None or last[0] != failed:
            self._last_failure[meta.key(job)] = (failed, now)
            last = (failed, now)
        remaining = last[1] + delay - now
        if remaining > 0:
            self.enqueue_after(meta.key(job), remaining)
            return True
        return False

    async def _delete_pods(self, job: Obj, victims: list[Obj]) -> None:
        await asyncio.gather(*(self.pod_control.delete_pod(meta.namespace(p), meta.name(p), job)
                               for p in victims))

    async def _write_status(self, job: Obj, status: Obj) -> None:
        if status == util.status(job):
            return
        body = {**job, "status": status}
        try:
            updated = await self.jobs.update(body, subresource="status")
        except ApiError as err:
            if err.code == 404:
                return
            raise
        job["status"] = copy.deepcopy(util.status(updated))
        job["metadata"]["resourceVersion"] = meta.resource_version(updated)


def new_job_controller(ctx: ControllerContext) -> JobController:
    return JobController(ctx, workers=ctx.config.concurrent_job_syncs,
                         backoff=ctx.config.job_pod_failure_backoff)
