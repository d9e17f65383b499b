"""Upstream's BoundedFrequencyRunner: run a sync at most every `min_interval` and at least
every `max_interval`, coalescing any number of requests in between into one run."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from tinykube import aio

log = logging.getLogger(__name__)


class BoundedFrequencyRunner:
    """Drives `fn`; `run()` asks for a sync soon, `loop()` is the owned task body."""

    def __init__(
        self,
        name: str,
        fn: Callable[[], Awaitable[None]],
        min_interval: float,
        max_interval: float,
        retry_interval: float = 1.0,
    ) -> None:
        self.name = name
        self._fn = fn
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.retry_interval = retry_interval
        self._wake = asyncio.Event()
        self._last_run = float("-inf")
        self._retry_at: float | None = None

    def run(self) -> None:
        """Request a sync as soon as `min_interval` allows. Safe from informer handlers."""
        self._wake.set()

    def _deadline(self) -> float:
        deadline = self._last_run + self.max_interval
        if self._retry_at is not None:
            deadline = min(deadline, self._retry_at)
        return deadline

    async def _wait_for_request(self) -> None:
        timeout = max(0.0, self._deadline() - time.monotonic())
        try:
            await aio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass

    async def loop(self) -> None:
        """Run until cancelled; a failed run is retried after `retry_interval`."""
        while True:
            await self._wait_for_request()
            pause = self._last_run + self.min_interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)  # rate limit: requests keep coalescing meanwhile
            self._wake.clear()
            self._retry_at = None
            self._last_run = time.monotonic()
            try:
                await self._fn()
            except (OSError, RuntimeError, ValueError) as exc:
                log.error("%s: sync failed, retrying in %.1fs: %s", self.name, self.retry_interval, exc)
                self._retry_at = time.monotonic() + self.retry_interval
            except Exception:  # a bug in one sync must not stop all future syncs
                log.exception("%s: sync crashed, retrying in %.1fs", self.name, self.retry_interval)
                self._retry_at = time.monotonic() + self.retry_interval
