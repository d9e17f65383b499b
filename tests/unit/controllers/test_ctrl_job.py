"""Job controller and ttl-after-finished, over the fake client."""

from __future__ import annotations

import datetime as dt

from tinykube.api import meta
from tinykube.controllers.job import TRACKING_FINALIZER, JobController, wanted_active
from tinykube.controllers.testutil import make_context
from tinykube.controllers.ttlafterfinished import TTLAfterFinishedController, seconds_left

KEY = "default/pi"


def new_job(completions=2, parallelism=1, backoff_limit=1, **spec):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": meta.new_uid(),
                         "generation": 1},
            "spec": {"completions": completions, "parallelism": parallelism,
                     "backoffLimit": backoff_limit, **spec,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "pi", "image": "perl"}]}}},
            "status": {}}


def setup(job):
    ctx, client, informers, recorder = make_context()
    ctrl = JobController(ctx, backoff=0.0)
    client.seed("jobs", job)
    informers.mirror(client, "jobs")
    return ctrl, client, informers, recorder


async def step(ctrl, client, informers):
    informers.mirror(client, "jobs", "pods")
    for pod in client.objects.get("pods", {}).values():
        ctrl.expectations.creation_observed(KEY)
    await ctrl.sync(KEY)
    informers.mirror(client, "jobs", "pods")
    return client.objects["jobs"][KEY]["status"]


def finish(client, phase, count=None):
    done = 0
    for pod in client.objects.get("pods", {}).values():
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        if count is not None and done >= count:
            break
        pod["status"] = {"phase": phase}
        pod["metadata"]["resourceVersion"] = client.bump()
        done += 1


def conds(status):
    return {c["type"]: c for c in status.get("conditions") or []}


def test_wanted_active():
    assert wanted_active(new_job(completions=5, parallelism=2), 4) == 1
    assert wanted_active(new_job(completions=None, parallelism=3), 0) == 3
    assert wanted_active(new_job(completions=None, parallelism=3), 1) == 0
    assert wanted_active(new_job(suspend=True), 0) == 0


async def test_job_runs_to_completion_counting_each_pod_once():
    ctrl, client, informers, recorder = setup(new_job(completions=2))
    status = await step(ctrl, client, informers)
    [pod] = client.objects["pods"].values()
    assert TRACKING_FINALIZER in pod["metadata"]["finalizers"]
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi"
    assert status["active"] == 1 and status["startTime"]
    finish(client, "Succeeded")
    status = await step(ctrl, client, informers)
    assert status["succeeded"] == 1 and status["active"] == 1
    first = [p for p in client.objects["pods"].values() if p.get("status", {}).get("phase")][0]
    assert TRACKING_FINALIZER not in (first["metadata"].get("finalizers") or [])
    status = await step(ctrl, client, informers)
    assert status["succeeded"] == 1  # counted once
    finish(client, "Succeeded")
    status = await step(ctrl, client, informers)
    assert status["succeeded"] == 2 and status["active"] == 0
    c = conds(status)
    assert c["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
    assert c["Complete"]["status"] == "True" and status["completionTime"]
    assert ("Normal", "Completed", "Job completed") in recorder.events


async def test_backoff_limit_fails_the_job():
    ctrl, client, informers, recorder = setup(new_job(completions=1, backoff_limit=1))
    await step(ctrl, client, informers)
    for _ in range(3):
        finish(client, "Failed")
        status = await step(ctrl, client, informers)
    assert status["failed"] == 2
    c = conds(status)
    assert c["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    assert c["Failed"]["message"] == "Job has reached the specified backoff limit"


async def test_active_deadline_kills_running_pods():
    job = new_job(completions=1, activeDeadlineSeconds=10)
    job["status"]["startTime"] = "2020-01-01T00:00:00Z"
    ctrl, client, informers, _ = setup(job)
    status = await step(ctrl, client, informers)
    assert conds(status)["FailureTarget"]["reason"] == "DeadlineExceeded"
    assert conds(status)["Failed"]["reason"] == "DeadlineExceeded"
    assert not client.objects.get("pods")


def test_ttl_seconds_left():
    job = new_job(ttlSecondsAfterFinished=60)
    job["status"]["conditions"] = [{"type": "Complete", "status": "True",
                                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    now = dt.datetime(2026, 1, 1, 0, 0, 30, tzinfo=dt.timezone.utc)
    assert seconds_left(job, now) == 30
    del job["spec"]["ttlSecondsAfterFinished"]
    assert seconds_left(job, now) is None


async def test_ttl_deletes_expired_job_in_foreground():
    job = new_job(ttlSecondsAfterFinished=0)
    job["status"]["conditions"] = [{"type": "Failed", "status": "True",
                                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    ctx, client, informers, _ = make_context()
    ctrl = TTLAfterFinishedController(ctx)
    client.seed("jobs", job)
    informers.mirror(client, "jobs")
    await ctrl.sync(KEY)
    [delete] = [a for a in client.writes() if a.verb == "delete"]
    assert delete.options["propagation_policy"] == "Foreground"


def test_completed_indexes_round_trip():
    from tinykube.controllers.job import format_indexes, parse_indexes
    assert format_indexes({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8}
    assert format_indexes(set()) == "" and parse_indexes("") == set()


async def test_indexed_job_creates_one_pod_per_index_and_tracks_completed_indexes():
    from tinykube.controllers.job import INDEX_KEY
    ctrl, client, informers, _ = setup(new_job(completions=3, parallelism=2,
                                               completionMode="Indexed"))
    await step(ctrl, client, informers)
    pods = list(client.objects["pods"].values())
    indexes = sorted(p["metadata"]["annotations"][INDEX_KEY] for p in pods)
    assert indexes == ["0", "1"]
    pod0 = next(p for p in pods if p["metadata"]["annotations"][INDEX_KEY] == "0")
    assert pod0["metadata"]["name"].startswith("pi-0-")
    assert pod0["spec"]["hostname"] == "pi-0"
    env = pod0["spec"]["containers"][0]["env"][0]
    assert env["name"] == "JOB_COMPLETION_INDEX"
    pod0["status"] = {"phase": "Succeeded"}
    status = await step(ctrl, client, informers)
    assert status["completedIndexes"] == "0" and status["succeeded"] == 1
    fresh = sorted(p["metadata"]["annotations"][INDEX_KEY]
                   for p in client.objects["pods"].values()
                   if p.get("status", {}).get("phase") != "Succeeded")
    assert fresh == ["1", "2"]
    finish(client, "Succeeded")
    status = await step(ctrl, client, informers)
    assert status["completedIndexes"] == "0-2" and status["succeeded"] == 3
    assert conds(status)["Complete"]["status"] == "True"
