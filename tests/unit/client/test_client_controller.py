"""Controller.process_next_work_item: forget on success, back-off on failure, always done."""

from __future__ import annotations

import asyncio

from tinykube.client.controller import Controller
from tinykube.client.workqueue import WorkQueue


class Flaky(Controller):
    name = "flaky"

    def __init__(self, failures: int) -> None:
        super().__init__(queue=WorkQueue("flaky", base_delay=0.001))
        self.failures = failures
        self.calls: list[str] = []
        self.succeeded = asyncio.Event()

    async def sync(self, key):
        self.calls.append(key)
        if len(self.calls) <= self.failures:
            raise RuntimeError("transient")
        self.succeeded.set()


async def test_failure_requeues_with_backoff_then_forgets():
    ctl = Flaky(failures=2)
    ctl.enqueue("ns/a")
    runner = asyncio.create_task(ctl.run(workers=2))
    await asyncio.wait_for(ctl.succeeded.wait(), 2)
    assert ctl.calls == ["ns/a"] * 3
    assert ctl.queue.num_requeues("ns/a") == 0
    ctl.shutdown()
    await asyncio.wait_for(runner, 2)


async def test_process_next_work_item_returns_false_after_shutdown():
    ctl = Flaky(failures=0)
    ctl.enqueue("k")
    assert await ctl.process_next_work_item() is True
    assert ctl.calls == ["k"]
    ctl.shutdown()
    assert await ctl.process_next_work_item() is False
