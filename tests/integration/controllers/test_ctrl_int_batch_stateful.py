"""Jobs, StatefulSets, DaemonSets, quotas and LoadBalancers against a real API server."""

from __future__ import annotations

import copy

import pytest

from tinykube.api import meta
from tinykube.cloud.manager import CloudControllerManager, CloudControllerManagerConfig
from tinykube.controllers.testutil import (RunningControllers, mark_ready, wait_for_list,
                                           wait_for_object)


def conditions(obj):
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


async def finish_pods(api, pods, phase):
    for pod in pods:
        current = await api.resource("pods").get(meta.name(pod), namespace="default")
        current["status"] = {**(current.get("status") or {}), "phase": phase}
        await api.resource("pods").update(current, subresource="status")


JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
       "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 1,
                "ttlSecondsAfterFinished": 1,
                "template": {"spec": {"restartPolicy": "Never", "containers": [
                    {"name": "pi", "image": "perl"}]}}}}


async def test_job_completes_and_is_cleaned_up_after_ttl(api):
    jobs, pods = api.resource("jobs", "batch"), api.resource("pods")
    async with RunningControllers(api, ["job", "ttl-after-finished", "garbagecollector"]):
        await jobs.create(copy.deepcopy(JOB), namespace="default")
        running = await wait_for_list(pods, lambda items: len(items) == 2, namespace="default",
                                      label_selector="batch.kubernetes.io/job-name=pi")
        await finish_pods(api, running, "Succeeded")
        job = await wait_for_object(jobs, "pi", lambda j: "Complete" in conditions(j),
                                    namespace="default")
        assert job["status"]["succeeded"] == 2 and job["status"].get("completionTime")
        assert conditions(job)["SuccessCriteriaMet"]["reason"] == "CompletionsReached"
        await wait_for_object(jobs, "pi", lambda j: j is None, namespace="default", timeout=15)
        await wait_for_list(pods, lambda items: not items, namespace="default")


async def test_job_fails_after_backoff_limit(api):
    jobs, pods = api.resource("jobs", "batch"), api.resource("pods")
    spec = copy.deepcopy(JOB)
    spec["spec"].update({"completions": 1, "parallelism": 1})
    del spec["spec"]["ttlSecondsAfterFinished"]
    async with RunningControllers(api, ["job"], job_pod_failure_backoff=0.05):
        await jobs.create(spec, namespace="default")
        failed: set[str] = set()
        for _ in range(2):
            batch = await wait_for_list(pods, lambda items: any(
                meta.name(p) not in failed for p in items), namespace="default")
            fresh = [p for p in batch if meta.name(p) not in failed]
            await finish_pods(api, fresh, "Failed")
            failed |= {meta.name(p) for p in fresh}
        job = await wait_for_object(jobs, "pi", lambda j: "Failed" in conditions(j),
                                    namespace="default", timeout=15)
        assert conditions(job)["Failed"]["reason"] == "BackoffLimitExceeded"
        assert job["status"]["failed"] == 2


STS = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
       "spec": {"replicas": 2, "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                             "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}}}}]}}


async def test_statefulset_creates_ordered_pods_and_claims(api):
    pods = api.resource("pods")
    async with RunningControllers(api, ["statefulset"]):
        await api.resource("statefulsets", "apps").create(copy.deepcopy(STS),
                                                           namespace="default")
        [first] = await wait_for_list(pods, lambda items: len(items) == 1, namespace="default")
        assert meta.name(first) == "web-0"
        await mark_ready(api, first, "10.244.0.10")
        both = await wait_for_list(pods, lambda items: len(items) == 2, namespace="default")
        assert sorted(meta.name(p) for p in both) == ["web-0", "web-1"]
        claims = (await api.resource("persistentvolumeclaims").list(
            namespace="default"))["items"]
        assert sorted(meta.name(c) for c in claims) == ["www-web-0", "www-web-1"]


async def test_daemonset_runs_one_pod_per_node(api):
    for name in ("n1", "n2"):
        await api.resource("nodes").create({"apiVersion": "v1", "kind": "Node",
                                            "metadata": {"name": name}})
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "a", "image": "agent"}]}}}}
    async with RunningControllers(api, ["daemonset"]):
        await api.resource("daemonsets", "apps").create(ds, namespace="default")
        items = await wait_for_list(api.resource("pods"), lambda items: len(items) == 2,
                                    namespace="default")
        pinned = sorted(p["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0][
            "matchFields"][0]["values"][0] for p in items)
        assert pinned == ["n1", "n2"]
        await wait_for_object(api.resource("daemonsets", "apps"), "agent", lambda d: d and (
            d.get("status") or {}).get("desiredNumberScheduled") == 2, namespace="default")


async def test_resource_quota_used_follows_pods(api):
    quotas = api.resource("resourcequotas")
    await quotas.create({"apiVersion": "v1", "kind": "ResourceQuota",
                         "metadata": {"name": "q"},
                         "spec": {"hard": {"pods": "10", "requests.cpu": "2"}}},
                        namespace="default")
    async with RunningControllers(api, ["resourcequota"]):
        for i in range(2):
            await api.resource("pods").create({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
                "spec": {"containers": [{"name": "c", "image": "x", "resources": {
                    "requests": {"cpu": "250m"}}}]}}, namespace="default")
        q = await wait_for_object(quotas, "q", lambda o: o and (o.get("status") or {}).get(
            "used", {}).get("pods") == "2", namespace="default")
        assert q["status"]["used"]["requests.cpu"] == "500m"
        assert q["status"]["hard"] == {"pods": "10", "requests.cpu": "2"}


async def test_cloud_controller_manager_assigns_load_balancer_ip(api):
    cfg = CloudControllerManagerConfig(client=api, leader_elect=False, secure_port=None,
                                       lb_ip_range="172.18.255.200-172.18.255.201")
    ccm = CloudControllerManager(cfg)
    await ccm.start()
    try:
        await ccm.wait_running(10)
        svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
               "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": 8080}]}}
        await api.resource("services").create(svc, namespace="default")
        got = await wait_for_object(api.resource("services"), "lb", lambda s: s and (
            (s.get("status") or {}).get("loadBalancer") or {}).get("ingress"),
            namespace="default")
        assert got["status"]["loadBalancer"]["ingress"][0]["ip"] == "172.18.255.200"
        await api.resource("services").delete("lb", namespace="default")
        await wait_for_object(api.resource("services"), "lb", lambda s: s is None,
                              namespace="default")
        assert ccm.controllers["service-lb-controller"].pool.holder("default/lb") is None
    finally:
        await ccm.stop()


async def test_cronjob_starts_a_job_on_schedule(api):
    cronjobs, jobs = api.resource("cronjobs", "batch"), api.resource("jobs", "batch")
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
          "spec": {"schedule": "@every 2s", "concurrencyPolicy": "Forbid",
                   "jobTemplate": {"spec": {"template": {"spec": {
                       "restartPolicy": "Never",
                       "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    async with RunningControllers(api, ["cronjob", "job"]):
        await cronjobs.create(cj, namespace="default")
        [job] = await wait_for_list(jobs, lambda items: len(items) == 1, namespace="default",
                                    timeout=10)
        assert meta.controller_of(job)["kind"] == "CronJob"
        assert "batch.kubernetes.io/cronjob-scheduled-timestamp" in meta.annotations(job)
        got = await wait_for_object(cronjobs, "tick", lambda o: o and (o.get("status") or {}).get(
            "lastScheduleTime") and (o.get("status") or {}).get("active"), namespace="default")
        assert got["status"]["active"][0]["name"] == meta.name(job)


async def test_eviction_respects_the_disruption_budget(api):
    from tinykube.api.errors import ApiError
    from tinykube.controllers.testutil import PodReadier

    pdbs = api.resource("poddisruptionbudgets", "policy")
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    await pdbs.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                       "metadata": {"name": "web-pdb"},
                       "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}},
                      namespace="default")
    async with RunningControllers(api, ["replicaset", "disruption"]), PodReadier(api):
        await api.resource("replicasets", "apps").create(rs, namespace="default")
        budget = await wait_for_object(pdbs, "web-pdb", lambda o: o and (
            o.get("status") or {}).get("currentHealthy") == 2, namespace="default")
        assert budget["status"]["disruptionsAllowed"] == 0
        pod = (await api.resource("pods").list(namespace="default"))["items"][0]
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": meta.name(pod), "namespace": "default"}}
        with pytest.raises(ApiError) as refused:
            await api.resource("pods").create_subresource(meta.name(pod), "eviction", eviction,
                                                          namespace="default")
        assert refused.value.code == 429
        await pdbs.patch("web-pdb", {"spec": {"minAvailable": 1}}, namespace="default",
                         patch_type="merge")
        await wait_for_object(pdbs, "web-pdb", lambda o: o and (o.get("status") or {}).get(
            "disruptionsAllowed") == 1, namespace="default")
        await api.resource("pods").create_subresource(meta.name(pod), "eviction", eviction,
                                                      namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: meta.name(pod) not in {
            meta.name(p) for p in items} and len(items) == 2, namespace="default")
