"""PodDisruptionBudget status from pods and their controllers' scale."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.disruption import DisruptionController
from tinykube.controllers.testutil import make_context, new_deployment, new_pod, new_replicaset


def pdb(**spec):
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web-pdb", "namespace": "default", "uid": meta.new_uid(),
                         "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def setup(budget, ready=3, total=3):
    ctx, client, informers, _ = make_context()
    ctrl = DisruptionController(ctx)
    d = new_deployment("web", replicas=4)
    rs = new_replicaset("web-1", 4, labels={"app": "web"})
    rs["metadata"]["ownerReferences"] = [meta.owner_reference(d)]
    informers["deployments"].seed(d)
    informers["replicasets"].seed(rs)
    pods = [new_pod(f"web-{i}", labels={"app": "web"}, owner=rs, phase="Running",
                    ready=i < ready) for i in range(total)]
    informers["pods"].seed(*pods)
    client.seed("poddisruptionbudgets", budget)
    informers["poddisruptionbudgets"].seed(budget)
    return ctrl, client


def status(client):
    return client.objects["poddisruptionbudgets"]["default/web-pdb"]["status"]


async def test_min_available_number():
    ctrl, client = setup(pdb(minAvailable=2))
    await ctrl.sync("default/web-pdb")
    st = status(client)
    assert (st["currentHealthy"], st["desiredHealthy"], st["expectedPods"],
            st["disruptionsAllowed"]) == (3, 2, 3, 1)
    cond = st["conditions"][0]
    assert cond["type"] == "DisruptionAllowed" and cond["reason"] == "SufficientPods"


async def test_max_unavailable_uses_the_deployment_scale():
    ctrl, client = setup(pdb(maxUnavailable="25%"), ready=2)
    await ctrl.sync("default/web-pdb")
    st = status(client)
    assert st["expectedPods"] == 4 and st["desiredHealthy"] == 3
    assert st["disruptionsAllowed"] == 0
    assert st["conditions"][0]["reason"] == "InsufficientPods"


async def test_recently_evicted_pods_are_not_healthy():
    budget = pdb(minAvailable=1)
    budget["status"] = {"disruptedPods": {"web-0": meta.now()}}
    ctrl, client = setup(budget)
    await ctrl.sync("default/web-pdb")
    st = status(client)
    assert st["currentHealthy"] == 2 and st["disruptionsAllowed"] == 1
    assert list(st["disruptedPods"]) == ["web-0"]
