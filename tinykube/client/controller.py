"""The controller base: workers draining a rate-limited work queue into ``sync(key)``.

Subclasses override ``sync`` (level-triggered and idempotent: read the cache, compare desired
with actual, act, raise to be retried). ``process_next_work_item`` is upstream's loop body:
get a key, sync it, forget its back-off on success, requeue it rate-limited on failure, and
always mark it done so it can be handed out again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

from tinykube.client.workqueue import ShutDown, WorkQueue

log = logging.getLogger(__name__)


class Controller:
    """A named reconciler with its own work queue and ``workers`` concurrent workers."""

    name: str = "controller"
    workers: int = 1

    def __init__(self, name: str | None = None, workers: int | None = None,
                 queue: WorkQueue | None = None) -> None:
        if name is not None:
            self.name = name
        if workers is not None:
            self.workers = workers
        self.queue = queue or WorkQueue(self.name)

    async def sync(self, key: Hashable) -> None:
        """Bring the object named by ``key`` to its desired state; raise to retry later."""
        raise NotImplementedError(f"{type(self).__name__}.sync")

    def enqueue(self, key: Hashable) -> None:
        self.queue.add(key)

    async def process_next_work_item(self) -> bool:
        """Handle one key; False once the queue is shut down."""
        try:
            key = await self.queue.get()
        except ShutDown:
            return False
        try:
            await self.sync(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any sync failure is retried with back-off
            log.warning("%s: error syncing %r (retry %d): %s", self.name, key,
                        self.queue.num_requeues(key) + 1, exc,
                        exc_info=not isinstance(exc, (ConnectionError,)) and log.isEnabledFor(
                            logging.DEBUG))
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
        finally:
            self.queue.done(key)
        return True

    async def _worker(self) -> None:
        while await self.process_next_work_item():
            pass

    async def run(self, workers: int | None = None) -> None:
        """Run workers until the queue shuts down (or this task is cancelled)."""
        count = workers or self.workers
        tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}")
                 for i in range(count)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def shutdown(self) -> None:
        self.queue.shutdown()
