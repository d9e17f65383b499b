"""The cronjob controller: create Jobs on a cron schedule (upstream's cronjob v2 logic).

Each sync works out the most recent scheduled time not yet run (from
``status.lastScheduleTime``, or the creation time, bounded by
``startingDeadlineSeconds``), applies ``concurrencyPolicy`` (Allow, Forbid, Replace),
creates ``<cronjob>-<scheduled minutes since the epoch>`` and records it in
``status.active`` and ``lastScheduleTime``; finished Jobs beyond
``successfulJobsHistoryLimit``/``failedJobsHistoryLimit`` are deleted. The key is requeued
for the next scheduled time, so nothing polls.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import cron, util
from tinykube.controllers.base import (BaseController, ControllerContext, enqueue_controller_of,
                                       owner_uid_index)
from tinykube.controllers.podcontrol import controller_ref

Obj = dict[str, Any]
NAME = "cronjob-controller"
SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def job_finished(job: Obj) -> str | None:
    """"Complete" or "Failed" when the Job is finished."""
    for cond in util.status(job).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"]
    return None


def most_recent_schedule(schedule: cron.Schedule, cj: Obj, now: dt.datetime
                         ) -> tuple[dt.datetime | None, int]:
    """The latest unmet scheduled time at or before ``now`` and how many were missed."""
    earliest = util.parse_time(util.status(cj).get("lastScheduleTime")) or \
        util.parse_time(meta.creation_timestamp(cj)) or now
    deadline = util.spec(cj).get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, now - dt.timedelta(seconds=int(deadline)))
    latest: dt.datetime | None = None
    missed = 0
    t = schedule.next_after(earliest)
    while t is not None and t <= now:
        latest, missed = t, missed + 1
        if missed > 100:  # as upstream: too many missed starts, take the newest we can
            t = schedule.next_after(now - dt.timedelta(minutes=1))
            if t is not None and t <= now:
                latest = t
            break
        t = schedule.next_after(t)
    return latest, missed


def job_name(cj: Obj, scheduled: dt.datetime) -> str:
    return f"{meta.name(cj)}-{int(scheduled.timestamp() // 60)}"


def job_from_template(cj: Obj, scheduled: dt.datetime) -> Obj:
    template = copy.deepcopy(util.spec(cj).get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = util.format_time(scheduled)
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name(cj, scheduled), "namespace": meta.namespace(cj),
                         "labels": dict(tmeta.get("labels") or {}),
                         "annotations": annotations,
                         "ownerReferences": [controller_ref(cj)]},
            "spec": template.get("spec") or {}}


def job_ref(job: Obj) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta.name(job),
            "namespace": meta.namespace(job), "uid": meta.uid(job),
            "resourceVersion": meta.resource_version(job)}


class CronJobController(BaseController):
    """Reconciles CronJobs with the Jobs they start."""

    def __init__(self, ctx: ControllerContext, clock: Any = None) -> None:
        super().__init__(ctx, NAME, 2)
        self.clock = clock or util.utcnow
        self.cj_informer = ctx.informers.informer("cronjobs", "batch")
        self.job_informer = ctx.informers.informer("jobs", "batch")
        owner_uid_index(self.job_informer)
        self.cronjobs = ctx.client.resource("cronjobs", "batch")
        self.jobs = ctx.client.resource("jobs", "batch")
        self.recorder = ctx.recorder(NAME)
        self.cj_informer.add_handlers(on_add=lambda c: self.enqueue(meta.key(c)),
                                      on_update=lambda o, n: self.enqueue(meta.key(n)))
        enqueue_controller_of(self.job_informer, "CronJob", self.enqueue)

    async def sync(self, key: str) -> None:
        cached = self.cj_informer.cache.get(key)
        if cached is None:
            return
        cj = copy.deepcopy(cached)
        now = self.clock()
        jobs = self.job_informer.cache.by_index("owner-uid", meta.uid(cj))
        status = copy.deepcopy(util.status(cj))
        self._reconcile_active(cj, status, jobs)
        await self._cleanup_history(cj, jobs)
        if meta.deletion_timestamp(cj) is not None:
            await self._write_status(cj, status)
            return
        try:
            schedule = cron.parse(util.spec(cj).get("schedule") or "",
                                  util.spec(cj).get("timeZone"))
        except cron.CronError as err:
            self.recorder.event(cj, "Warning", "UnparseableSchedule",
                                f"unparseable schedule: {util.spec(cj).get('schedule')!r} : "
                                f"{err}")
            await self._write_status(cj, status)
            return
        if not util.spec(cj).get("suspend"):
            await self._maybe_start(cj, status, schedule, now)
            nxt = schedule.next_after(now)
            if nxt is not None:
                self.enqueue_after(key, (nxt - now).total_seconds() + 0.1)
        await self._write_status(cj, status)

    def _reconcile_active(self, cj: Obj, status: Obj, jobs: list[Obj]) -> None:
        by_uid = {meta.uid(j): j for j in jobs}
        active = []
        for ref in status.get("active") or []:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                continue
            finished = job_finished(job)
            if finished is None:
                active.append(ref)
                continue
            self.recorder.event(cj, "Normal", "SawCompletedJob",
                                f"Saw completed job: {meta.name(job)}, status: {finished}")
            if finished == "Complete":
                done = util.status(job).get("completionTime") or meta.now()
                last = status.get("lastSuccessfulTime")
                if not last or done > last:
                    status["lastSuccessfulTime"] = done
        listed = {r.get("uid") for r in active}
        for job in jobs:
            if job_finished(job) is None and meta.uid(job) not in listed:
                active.append(job_ref(job))
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    async def _cleanup_history(self, cj: Obj, jobs: list[Obj]) -> None:
        for kind, field, default in (("Complete", "successfulJobsHistoryLimit", 3),
                                     ("Failed", "failedJobsHistoryLimit", 1)):
            limit = util.spec(cj).get(field, default)
            if limit is None:
                continue
            finished = sorted((j for j in jobs if job_finished(j) == kind
                               and meta.deletion_timestamp(j) is None),
                              key=lambda j: (util.creation_time(j), meta.name(j)))
            for job in finished[:max(len(finished) - int(limit), 0)]:
                await self._delete_job(cj, job)

    async def _delete_job(self, cj: Obj, job: Obj) -> None:
        try:
            await self.jobs.delete(meta.name(job), namespace=meta.namespace(job),
                                   propagation_policy="Background")
        except ApiError as err:
            if err.code != 404:
                raise
            return
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {meta.name(job)}")

    async def _maybe_start(self, cj: Obj, status: Obj, schedule: cron.Schedule,
                           now: dt.datetime) -> None:
        scheduled, _ = most_recent_schedule(schedule, cj, now)
        if scheduled is None:
            return
        deadline = util.spec(cj).get("startingDeadlineSeconds")
        if deadline is not None and scheduled + dt.timedelta(seconds=int(deadline)) < now:
            self.recorder.event(cj, "Warning", "MissSchedule",
                                f"Missed scheduled time to start a job: "
                                f"{util.format_time(scheduled)}")
            return
        name = job_name(cj, scheduled)
        if any(r.get("name") == name for r in status.get("active") or []) or \
                self.job_informer.cache.get(f"{meta.namespace(cj)}/{name}") is not None:
            return
        policy = util.spec(cj).get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and "
                                "concurrency policy is Forbid")
            return
        if policy == "Replace":
            for ref in status.get("active") or []:
                job = self.job_informer.cache.get(f"{meta.namespace(cj)}/{ref.get('name')}")
                if job is not None:
                    await self._delete_job(cj, job)
            status.pop("active", None)
        try:
            job = await self.jobs.create(job_from_template(cj, scheduled),
                                         namespace=meta.namespace(cj))
        except ApiError as err:
            if err.code != 409:
                self.recorder.event(cj, "Warning", "FailedCreate",
                                    f"Error creating job: {err}")
                raise
            job = await self.jobs.get(name, namespace=meta.namespace(cj))
        else:
            self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {name}")
        status.setdefault("active", []).append(job_ref(job))
        status["lastScheduleTime"] = util.format_time(scheduled)

    async def _write_status(self, cj: Obj, status: Obj) -> None:
        if status == util.status(cj):
            return
        with ignore_not_found():
            await self.cronjobs.update({**cj, "status": status}, subresource="status")


def new_cronjob_controller(ctx: ControllerContext) -> CronJobController:
    return CronJobController(ctx)
