"""ReplicaSets and Deployments against a real API server with the controller manager."""

from __future__ import annotations

import asyncio
import copy

import pytest

from tinykube.api import meta
from tinykube.controllers import deployment_util as du
from tinykube.controllers.testutil import (PodReadier, RunningControllers, load_example,
                                           wait_for_list, wait_for_object)


WORKLOADS = ["replicaset", "deployment", "garbagecollector"]


def active(pods):
    return [p for p in pods if meta.deletion_timestamp(p) is None]


async def test_replicaset_recreates_a_deleted_pod(api):
    pods = api.resource("pods")
    async with RunningControllers(api, WORKLOADS):
        await api.resource("replicasets", "apps").create(load_example("web-rs.yaml"),
                                                          namespace="default")
        first = await wait_for_list(pods, lambda items: len(active(items)) == 3,
                                    namespace="default", label_selector="app=web")
        names = {meta.name(p) for p in first}
        assert all(n.startswith("web-rs-") and len(n) == len("web-rs-") + 5 for n in names)
        victim = sorted(names)[0]
        await pods.delete(victim, namespace="default")
        after = await wait_for_list(
            pods, lambda items: len(active(items)) == 3 and victim not in
            {meta.name(p) for p in items}, namespace="default", label_selector="app=web")
        assert len({meta.name(p) for p in after} - names) == 1
        rs = await wait_for_object(
            api.resource("replicasets", "apps"), "web-rs",
            lambda o: o is not None and (o.get("status") or {}).get("replicas") == 3,
            namespace="default")
        ref = meta.controller_of(after[0])
        assert ref["kind"] == "ReplicaSet" and ref["uid"] == meta.uid(rs)


async def test_replicaset_status_counts_ready_pods_and_scales_down(api):
    rss = api.resource("replicasets", "apps")
    async with RunningControllers(api, WORKLOADS), PodReadier(api):
        await rss.create(load_example("web-rs.yaml"), namespace="default")
        await wait_for_object(rss, "web-rs", lambda o: o is not None and (
            o.get("status") or {}).get("availableReplicas") == 3, namespace="default")
        await rss.patch("web-rs", {"spec": {"replicas": 1}}, namespace="default",
                        patch_type="merge")
        rs = await wait_for_object(rss, "web-rs", lambda o: o is not None and (
            o.get("status") or {}).get("replicas") == 1, namespace="default")
        assert rs["status"]["observedGeneration"] == rs["metadata"]["generation"]


async def test_replicaset_adopts_a_matching_orphan(api):
    pods = api.resource("pods")
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "stray", "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
    await pods.create(orphan, namespace="default")
    async with RunningControllers(api, WORKLOADS):
        await api.resource("replicasets", "apps").create(load_example("web-rs.yaml"),
                                                          namespace="default")
        items = await wait_for_list(pods, lambda items: len(items) == 3 and all(
            meta.controller_of(p) for p in items), namespace="default")
        assert "stray" in {meta.name(p) for p in items}


async def test_deployment_rolls_within_max_unavailable_and_rolls_back(api):
    deployments = api.resource("deployments", "apps")
    rss = api.resource("replicasets", "apps")
    pods = api.resource("pods")
    async with RunningControllers(api, WORKLOADS), PodReadier(api):
        await deployments.create(load_example("web-deployment.yaml"), namespace="default")
        await wait_for_object(deployments, "web", lambda d: d is not None and du.get_condition(
            d.get("status") or {}, "Progressing") is not None and du.get_condition(
            d["status"], "Progressing")["reason"] == "NewReplicaSetAvailable",
            namespace="default")
        original = (await deployments.get("web", namespace="default"))["spec"]["template"]

        # watch ready, non-terminating pods during the rollout
        ready: dict[str, bool] = {}
        low = [3]

        def track(items):
            for p in items:
                ready[meta.name(p)] = bool(meta.deletion_timestamp(p) is None and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (p.get("status") or {}).get("conditions") or []))
            alive = {meta.name(p) for p in items}
            low[0] = min(low[0], sum(1 for n, r in ready.items() if r and n in alive))
            return False

        monitor = asyncio.create_task(wait_for_list(pods, track, namespace="default",
                                                    timeout=60))
        await asyncio.sleep(0)
        await deployments.patch("web", {"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.26"}]}}}}, namespace="default")

        def rolled(d):
            st = (d or {}).get("status") or {}
            cond = du.get_condition(st, "Progressing") or {}
            return (st.get("observedGeneration") == d["metadata"]["generation"]
                    and st.get("updatedReplicas") == 3 and st.get("replicas") == 3
                    and st.get("availableReplicas") == 3
                    and cond.get("reason") == "NewReplicaSetAvailable")

        await wait_for_object(deployments, "web", rolled, namespace="default", timeout=30)
        monitor.cancel()
        with pytest.raises(asyncio.CancelledError):
            await monitor
        assert low[0] >= 3 - 1  # maxUnavailable: 1

        items = (await rss.list(namespace="default"))["items"]
        by_rev = sorted(items, key=du.revision)
        assert [du.revision(r) for r in by_rev] == [1, 2]
        assert [r["spec"]["replicas"] for r in by_rev] == [0, 3]
        assert by_rev[1]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"

        # `kubectl rollout undo` restores revision 1's template client-side
        undo = copy.deepcopy(by_rev[0]["spec"]["template"])
        undo["metadata"]["labels"].pop("pod-template-hash")
        await deployments.patch("web", [{"op": "replace", "path": "/spec/template",
                                         "value": undo}], namespace="default",
                                patch_type="json")
        await wait_for_object(deployments, "web", rolled, namespace="default", timeout=30)
        items = (await rss.list(namespace="default"))["items"]
        newest = max(items, key=du.revision)
        assert meta.name(newest) == meta.name(by_rev[0]) and du.revision(newest) == 3
        assert du.equal_ignore_hash(newest["spec"]["template"], original)
        d = await deployments.get("web", namespace="default")
        assert meta.annotations(d)[du.REVISION] == "3"


async def test_deleting_a_deployment_deletes_its_replicasets_and_pods(api):
    deployments = api.resource("deployments", "apps")
    async with RunningControllers(api, WORKLOADS):
        await deployments.create(load_example("web-deployment.yaml"), namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: len(items) == 3,
                            namespace="default")
        await deployments.delete("web", namespace="default", propagation_policy="Background")
        await wait_for_list(api.resource("replicasets", "apps"), lambda items: not items,
                            namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: not items, namespace="default")


async def test_foreground_deletion_removes_dependents_first(api):
    deployments = api.resource("deployments", "apps")
    async with RunningControllers(api, WORKLOADS):
        await deployments.create(load_example("web-deployment.yaml"), namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: len(items) == 3,
                            namespace="default")
        await deployments.delete("web", namespace="default", propagation_policy="Foreground")
        await wait_for_object(deployments, "web", lambda d: d is None, namespace="default")
        assert (await api.resource("pods").list(namespace="default"))["items"] == []
        assert (await api.resource("replicasets", "apps").list(
            namespace="default"))["items"] == []


async def test_orphan_deletion_keeps_replicasets(api):
    deployments = api.resource("deployments", "apps")
    rss = api.resource("replicasets", "apps")
    async with RunningControllers(api, WORKLOADS):
        await deployments.create(load_example("web-deployment.yaml"), namespace="default")
        await wait_for_list(rss, lambda items: len(items) == 1, namespace="default")
        await deployments.delete("web", namespace="default", propagation_policy="Orphan")
        await wait_for_object(deployments, "web", lambda d: d is None, namespace="default")
        [rs] = await wait_for_list(rss, lambda items: len(items) == 1 and not
                                   meta.owner_references(items[0]), namespace="default")
        assert meta.deletion_timestamp(rs) is None


async def test_replication_controller_keeps_its_replicas(api):
    rcs = api.resource("replicationcontrollers")
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
          "spec": {"replicas": 2, "selector": {"app": "legacy"},
                   "template": {"metadata": {"labels": {"app": "legacy"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    async with RunningControllers(api, ["replicationcontroller", "garbagecollector"]):
        await rcs.create(rc, namespace="default")
        pods = await wait_for_list(api.resource("pods"), lambda items: len(items) == 2,
                                   namespace="default", label_selector="app=legacy")
        assert all(meta.controller_of(p)["kind"] == "ReplicationController" for p in pods)
        assert all(meta.name(p).startswith("legacy-") for p in pods)
        await wait_for_object(rcs, "legacy", lambda o: o and (o.get("status") or {}).get(
            "replicas") == 2, namespace="default")
