"""Scheduler features end to end: leader election, metrics, --explain, preemption."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from tinykube.kubelet.hollow import HollowNodes, NodeTemplate
from tinykube.scheduler import Scheduler, SchedulerConfig
from tinykube.scheduler.config import KubeSchedulerConfiguration, LeaderElection
from tinykube.scheduler.scheduler import FILTER_ANNOTATION, SCORE_ANNOTATION
from tinykube.scheduler.testutil import make_pod


def new_pod(name, **kw):
    pod = make_pod(name, **kw)
    del pod["metadata"]["uid"]
    return pod


async def first_matching(resource, field_selector, predicate, timeout=30.0):
    """The first object in default matching the selector and predicate, listed or watched."""
    async def until():
        listed = await resource.list(namespace="default", field_selector=field_selector)
        for obj in listed["items"]:
            if predicate(obj):
                return obj
        async for etype, obj in resource.watch(
                namespace="default", field_selector=field_selector,
                resource_version=listed["metadata"]["resourceVersion"]):
            if etype != "DELETED" and predicate(obj):
                return obj
    return await asyncio.wait_for(until(), timeout)


async def watch_until(client, name, predicate, timeout=30.0):
    return await first_matching(client.resource("pods"), f"metadata.name={name}", predicate, timeout)


async def test_only_the_leader_schedules_and_metrics_are_served(apiserver):
    async with apiserver.client() as client:
        nodes = HollowNodes(client, count=2, lease_interval=0, manage_pods=False)
        await nodes.start()
        fast = KubeSchedulerConfiguration(leader_election=LeaderElection(
            lease_duration=3, renew_deadline=2, retry_period=0.5))
        first = Scheduler(SchedulerConfig(client=client, configuration=fast, secure_port=0,
                                          identity="first_1"))
        await first.start()
        await asyncio.wait_for(first.elector.leading.wait(), 10)
        second = Scheduler(SchedulerConfig(client=client, configuration=fast, secure_port=0,
                                           identity="second_2"))
        await second.start()
        try:
            await client.resource("pods").create(new_pod("a", cpu="100m"),
                                                 namespace="default")
            await watch_until(client, "a", lambda p: p["spec"].get("nodeName"))
            # the scheduler counts a binding once the API server has answered it, which a
            # watch can show first: its Scheduled Event comes after the count
            await first_matching(client.resource("events"), "involvedObject.name=a",
                                 lambda e: e["reason"] == "Scheduled")
            assert first.scheduled == 1 and second.scheduled == 0
            assert not second.elector.is_leader
            lease = await client.resource("leases").get("kube-scheduler",
                                                        namespace="kube-system")
            assert lease["spec"]["holderIdentity"] == "first_1"

            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{first.port}"
                async with http.get(base + "/healthz") as resp:
                    assert resp.status == 200 and await resp.text() == "ok"
                async with http.get(base + "/metrics") as resp:
                    text = await resp.text()
            assert ('scheduler_schedule_attempts_total{profile="default-scheduler",'
                    'result="scheduled"} 1.0') in text
            assert 'scheduler_pending_pods{queue="active"} 0.0' in text
            assert "scheduler_scheduling_attempt_duration_seconds_bucket" in text

            await first.stop()  # releases the lease: the standby takes over
            await asyncio.wait_for(second.elector.leading.wait(), 10)
            await client.resource("pods").create(new_pod("b", cpu="100m"),
                                                 namespace="default")
            await watch_until(client, "b", lambda p: p["spec"].get("nodeName"))
            assert second.scheduled == 1
            lease = await client.resource("leases").get("kube-scheduler",
                                                        namespace="kube-system")
            assert lease["spec"]["holderIdentity"] == "second_2"
            assert lease["spec"]["leaseTransitions"] >= 1
        finally:
            await second.stop()
            await nodes.stop()


async def test_explain_annotations(apiserver):
    async with apiserver.client() as client:
        small = HollowNodes(client, count=1, name_prefix="small-", lease_interval=0,
                            manage_pods=False, capacity=NodeTemplate(cpu="1"))
        big = HollowNodes(client, count=1, name_prefix="big-", lease_interval=0,
                          manage_pods=False, capacity=NodeTemplate(cpu="8"))
        await small.start()
        await big.start()
        sched = Scheduler(SchedulerConfig(client=client, leader_elect=False, secure_port=-1,
                                          explain=True))
        await sched.start()
        try:
            await client.resource("pods").create(new_pod("x", cpu="2"), namespace="default")
            pod = await watch_until(client, "x", lambda p: p["spec"].get("nodeName"))
            notes = pod["metadata"]["annotations"]
            filters = orjson.loads(notes[FILTER_ANNOTATION])
            scores = orjson.loads(notes[SCORE_ANNOTATION])
            assert filters["small-0"]["NodeResourcesFit"] == "Insufficient cpu"
            assert filters["big-0"]["NodeResourcesFit"] == "passed"
            assert list(scores) == ["big-0"] and scores["big-0"]["total"] > 0
        finally:
            await sched.stop()
            await small.stop()
            await big.stop()


async def test_preemption_evicts_lower_priority_pod(apiserver):
    async with apiserver.client() as client:
        nodes = HollowNodes(client, count=1, lease_interval=0,
                            capacity=NodeTemplate(cpu="1"))
        await nodes.start()
        sched = Scheduler(SchedulerConfig(client=client, leader_elect=False, secure_port=-1))
        await sched.start()
        try:
            for name, value in (("tk-low", 1), ("tk-high", 1000)):
                await client.resource("priorityclasses").create({
                    "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                    "metadata": {"name": name}, "value": value})
            low = new_pod("low", cpu="800m", priorityClassName="tk-low")
            high = new_pod("high", cpu="800m", priorityClassName="tk-high")
            for pod in (low, high):
                del pod["spec"]["priority"]  # admission fills it from the class
            await client.resource("pods").create(low, namespace="default")
            await watch_until(client, "low", lambda p: p["spec"].get("nodeName"))
            await client.resource("pods").create(high, namespace="default")
            high = await watch_until(client, "high", lambda p: p["spec"].get("nodeName"), 45)
            assert high["spec"]["nodeName"] == "hollow-node-0"
            await sched.recorder.close()
            events = await client.resource("events").list(namespace="default")
            reasons = {(e["involvedObject"]["name"], e["reason"]) for e in events["items"]}
            assert ("low", "Preempted") in reasons
            assert ("high", "FailedScheduling") in reasons
        finally:
            await sched.stop()
            await nodes.stop()
