"""SchedulingQueue: priority order, back-off, unschedulable pool and cluster events."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.scheduler.queue import (NODE_ADD, POD_ADD, QueueClosed, SchedulingQueue,
                                      backoff_duration)
from tinykube.scheduler.testutil import make_pod


def test_backoff_doubles_up_to_max():
    assert [backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


async def test_priority_then_fifo():
    q = SchedulingQueue()
    q.add(make_pod("low-1", priority=1))
    q.add(make_pod("high", priority=100))
    q.add(make_pod("low-2", priority=1))
    order = [(await q.pop()).info.name for _ in range(3)]
    assert order == ["high", "low-1", "low-2"]
    assert q.pending()["active"] == 0


async def test_unschedulable_pod_moves_on_relevant_event_only():
    q = SchedulingQueue(initial_backoff=0.01, max_backoff=0.02)
    q.add(make_pod("p"))
    qp = await q.pop()
    qp.unschedulable_plugins = {"NodeResourcesFit"}
    q.add_unschedulable_if_not_present(qp, q.scheduling_cycle)
    assert q.pending()["unschedulable"] == 1
    q.move_all_to_active_or_backoff(POD_ADD)  # NodeResourcesFit does not care
    assert q.pending()["unschedulable"] == 1
    q.move_all_to_active_or_backoff(NODE_ADD)
    assert q.pending()["unschedulable"] == 0
    again = await asyncio.wait_for(q.pop(), 1)  # via backoffQ, after 10 ms
    assert again.info.name == "p" and again.attempts == 2
    q.close()


async def test_move_request_during_cycle_sends_failure_to_backoff():
    q = SchedulingQueue(initial_backoff=0.01, max_backoff=0.02)
    q.add(make_pod("p"))
    qp = await q.pop()
    cycle = q.scheduling_cycle
    q.move_all_to_active_or_backoff(NODE_ADD)  # a node arrived while we were scheduling
    q.add_unschedulable_if_not_present(qp, cycle)
    assert q.pending() == {"active": 0, "backoff": 1, "unschedulable": 0, "gated": 0}
    assert (await asyncio.wait_for(q.pop(), 1)).info.name == "p"
    q.close()


async def test_update_of_unschedulable_pod_retries_and_delete_drops():
    q = SchedulingQueue(initial_backoff=0.01)
    pod = make_pod("p")
    q.add(pod)
    qp = await q.pop()
    q.add_unschedulable_if_not_present(qp, q.scheduling_cycle)
    q.update({**pod, "spec": {**pod["spec"], "nodeSelector": {"a": "b"}}})
    assert q.pending()["unschedulable"] == 0
    q.delete(pod)
    assert sum(q.pending().values()) == 0
    assert "default/p" not in q


async def test_stale_unschedulable_pods_are_flushed():
    q = SchedulingQueue()
    q.add(make_pod("p"))
    qp = await q.pop()
    q.add_unschedulable_if_not_present(qp, q.scheduling_cycle)
    q.flush_unschedulable_leftover(now=qp.in_unschedulable_since + 301)
    assert q.pending()["unschedulable"] == 0
    q.close()


async def test_close_wakes_pop():
    q = SchedulingQueue()
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.close()
    with pytest.raises(QueueClosed):
        await asyncio.wait_for(waiter, 1)
