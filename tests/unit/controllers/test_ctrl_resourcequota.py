"""ResourceQuota usage computation."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.resourcequota import ResourceQuotaController
from tinykube.controllers.testutil import make_context, new_pod, new_service


def pod(name, cpu=None, mem=None, lim_cpu=None, phase="Running"):
    p = new_pod(name, phase=phase)
    res = {}
    if cpu or mem:
        res["requests"] = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
    if lim_cpu:
        res["limits"] = {"cpu": lim_cpu}
    p["spec"]["containers"][0]["resources"] = res
    return p


async def test_used_counts_and_compute_in_the_hard_notation():
    ctx, client, informers, _ = make_context()
    ctrl = ResourceQuotaController(ctx, resync=0)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "q", "namespace": "default", "uid": meta.new_uid()},
             "spec": {"hard": {"pods": "10", "requests.cpu": "2", "requests.memory": "1Gi",
                               "limits.cpu": "4", "services": "5", "configmaps": "3",
                               "count/deployments.apps": "2"}}}
    client.seed("resourcequotas", quota)
    informers["resourcequotas"].seed(quota)
    informers["pods"].seed(pod("a", "250m", "128Mi", "1"), pod("b", "500m", "64Mi"),
                           pod("done", "1", "1Gi", phase="Succeeded"))
    informers["services"].seed(new_service("s"))
    await ctrl.sync("default/q")
    status = client.objects["resourcequotas"]["default/q"]["status"]
    assert status["hard"] == quota["spec"]["hard"]
    assert status["used"] == {"pods": "2", "requests.cpu": "750m", "requests.memory": "192Mi",
                              "limits.cpu": "1", "services": "1", "configmaps": "0",
                              "count/deployments.apps": "0"}


async def test_best_effort_scope_counts_only_best_effort_pods():
    ctx, client, informers, _ = make_context()
    ctrl = ResourceQuotaController(ctx, resync=0)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "be", "namespace": "default", "uid": meta.new_uid()},
             "spec": {"hard": {"pods": "5"}, "scopes": ["BestEffort"]}}
    client.seed("resourcequotas", quota)
    informers["resourcequotas"].seed(quota)
    informers["pods"].seed(pod("a", "250m"), pod("b"), pod("c"))
    await ctrl.sync("default/be")
    assert client.objects["resourcequotas"]["default/be"]["status"]["used"] == {"pods": "2"}


async def test_content_change_requeues_the_namespace_quotas():
    ctx, client, informers, _ = make_context()
    ctrl = ResourceQuotaController(ctx, resync=0)
    quota = {"apiVersion": "v1", "kind": "ResourceQuota",
             "metadata": {"name": "q", "namespace": "default", "uid": meta.new_uid()},
             "spec": {"hard": {"pods": "1"}}}
    informers["resourcequotas"].seed(quota)
    informers["pods"].add(pod("a"))
    assert await ctrl.queue.get() == "default/q"
