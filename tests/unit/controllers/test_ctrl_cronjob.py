"""Cron schedule parsing and the cronjob controller's scheduling decisions."""

from __future__ import annotations

import datetime as dt

import pytest

from tinykube.api import meta
from tinykube.controllers import cron
from tinykube.controllers.cronjob import CronJobController, most_recent_schedule
from tinykube.controllers.testutil import make_context

UTC = dt.timezone.utc


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("expr,after,expected", [
    ("*/15 * * * *", at(2026, 1, 1, 10, 7), at(2026, 1, 1, 10, 15)),
    ("0 9-17/4 * * *", at(2026, 1, 1, 10, 0), at(2026, 1, 1, 13, 0)),
    ("30 2 * * MON,wed", at(2026, 1, 1, 0, 0), at(2026, 1, 5, 2, 30)),  # 2026-01-01 is Thu
    ("0 0 1 JAN *", at(2026, 3, 1), at(2027, 1, 1)),
    ("@hourly", at(2026, 1, 1, 10, 59, 30), at(2026, 1, 1, 11, 0)),
    ("@daily", at(2026, 1, 1, 10), at(2026, 1, 2)),
    ("@weekly", at(2026, 1, 1), at(2026, 1, 4)),  # Sunday
    ("0 0 13 * 5", at(2026, 1, 1), at(2026, 1, 2)),  # Friday OR the 13th
    ("0 0 * * 7", at(2026, 1, 1), at(2026, 1, 4)),  # 7 is Sunday too
    ("@every 90s", at(2026, 1, 1), at(2026, 1, 1, 0, 1, 30)),
])
def test_next_after(expr, after, expected):
    assert cron.parse(expr).next_after(after) == expected


def test_time_zone_prefix_and_field():
    berlin = cron.parse("CRON_TZ=Europe/Berlin 0 9 * * *")
    assert berlin.next_after(at(2026, 1, 1)) == at(2026, 1, 1, 8)
    assert cron.parse("0 9 * * *", "Asia/Seoul").next_after(at(2026, 1, 1)) == \
        at(2026, 1, 2, 0)


@pytest.mark.parametrize("bad", ["* * * *", "61 * * * *", "*/0 * * * *", "a * * * *",
                                 "5-1 * * * *", "TZ=Nowhere/Land * * * * *"])
def test_bad_schedules(bad):
    with pytest.raises(cron.CronError):
        cron.parse(bad)


def new_cronjob(schedule="*/5 * * * *", **spec):
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default", "uid": meta.new_uid(),
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": {"template": {
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "c", "image": "busybox"}]}}}}},
            "status": {}}


def test_most_recent_schedule_counts_missed():
    cj = new_cronjob()
    latest, missed = most_recent_schedule(cron.parse("*/5 * * * *"), cj, at(2026, 1, 1, 0, 17))
    assert latest == at(2026, 1, 1, 0, 15) and missed == 3


def setup(cj, now):
    ctx, client, informers, recorder = make_context()
    ctrl = CronJobController(ctx, clock=lambda: now[0])
    client.seed("cronjobs", cj)
    informers.mirror(client, "cronjobs")
    return ctrl, client, informers, recorder


async def test_creates_job_for_latest_schedule_and_records_it():
    now = [at(2026, 1, 1, 0, 12)]
    ctrl, client, informers, recorder = setup(new_cronjob(), now)
    await ctrl.sync("default/tick")
    [job] = client.objects["jobs"].values()
    scheduled = at(2026, 1, 1, 0, 10)
    assert job["metadata"]["name"] == f"tick-{int(scheduled.timestamp() // 60)}"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    status = client.objects["cronjobs"]["default/tick"]["status"]
    assert status["lastScheduleTime"] == "2026-01-01T00:10:00Z"
    assert status["active"][0]["name"] == job["metadata"]["name"]
    informers.mirror(client, "cronjobs", "jobs")
    await ctrl.sync("default/tick")
    assert len(client.objects["jobs"]) == 1  # same slot: nothing new


async def test_forbid_skips_while_active_and_replace_replaces():
    now = [at(2026, 1, 1, 0, 6)]
    ctrl, client, informers, recorder = setup(new_cronjob(concurrencyPolicy="Forbid"), now)
    await ctrl.sync("default/tick")
    informers.mirror(client, "cronjobs", "jobs")
    now[0] = at(2026, 1, 1, 0, 11)
    await ctrl.sync("default/tick")
    assert len(client.objects["jobs"]) == 1
    assert any(r == "JobAlreadyActive" for _, r, _ in recorder.events)
    cj = client.objects["cronjobs"]["default/tick"]
    cj["spec"]["concurrencyPolicy"] = "Replace"
    informers.mirror(client, "cronjobs", "jobs")
    await ctrl.sync("default/tick")
    names = sorted(client.objects["jobs"])
    assert len(names) == 1 and names[0].endswith(str(int(at(2026, 1, 1, 0, 10).timestamp()
                                                         // 60)))


async def test_history_limits_delete_oldest_finished_jobs():
    now = [at(2026, 1, 1, 0, 1)]
    cj = new_cronjob(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    ctrl, client, informers, recorder = setup(cj, now)
    for i, kind in enumerate(["Complete", "Complete", "Failed"]):
        job = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": f"old-{i}", "namespace": "default", "uid": meta.new_uid(),
                            "creationTimestamp": f"2025-12-31T00:0{i}:00Z",
                            "ownerReferences": [meta.owner_reference(cj)]},
               "status": {"conditions": [{"type": kind, "status": "True"}]}}
        client.seed("jobs", job)
    informers.mirror(client, "jobs")
    await ctrl.sync("default/tick")
    assert sorted(k for k in client.objects["jobs"] if "old" in k) == ["default/old-1"]


async def test_suspended_cronjob_creates_nothing():
    now = [at(2026, 1, 1, 1)]
    ctrl, client, informers, _ = setup(new_cronjob(suspend=True), now)
    await ctrl.sync("default/tick")
    assert not client.objects.get("jobs")
