"""The ttl-after-finished controller: delete finished Jobs ``ttlSecondsAfterFinished`` later.

The clock starts at the finish time (the Complete or Failed condition's
lastTransitionTime); each Job waits as a delayed work-queue key; deletion uses Foreground
propagation so its pods go first, as upstream.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext

Obj = dict[str, Any]
NAME = "ttl-after-finished-controller"


def finish_time(job: Obj) -> dt.datetime | None:
    for cond in util.status(job).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return util.parse_time(cond.get("lastTransitionTime"))
    return None


def seconds_left(job: Obj, now: dt.datetime) -> float | None:
    """None: not subject to TTL (no TTL, not finished, being deleted)."""
    ttl = util.spec(job).get("ttlSecondsAfterFinished")
    finished = finish_time(job)
    if ttl is None or finished is None or meta.deletion_timestamp(job) is not None:
        return None
    return (finished + dt.timedelta(seconds=int(ttl)) - now).total_seconds()


class TTLAfterFinishedController(BaseController):
    """Deletes finished Jobs once their TTL has passed."""

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx, NAME, 2)
        self.job_informer = ctx.informers.informer("jobs", "batch")
        self.jobs = ctx.client.resource("jobs", "batch")
        self.job_informer.add_handlers(on_add=self._changed,
                                       on_update=lambda old, new: self._changed(new))

    def _changed(self, job: Obj) -> None:
        if util.spec(job).get("ttlSecondsAfterFinished") is not None and finish_time(job):
            self.enqueue(meta.key(job))

    async def sync(self, key: str) -> None:
        job = self.job_informer.cache.get(key)
        if job is None:
            return
        left = seconds_left(job, util.utcnow())
        if left is None:
            return
        if left > 0:
            self.enqueue_after(key, left)
            return
        namespace, name = meta.split_key(key)
        try:
            await self.jobs.delete(name, namespace=namespace, propagation_policy="Foreground",
                                   preconditions={"uid": meta.uid(job)})
        except ApiError as err:
            if err.code not in (404, 409):
                raise


def new_ttl_after_finished_controller(ctx: ControllerContext) -> TTLAfterFinishedController:
    return TTLAfterFinishedController(ctx)
