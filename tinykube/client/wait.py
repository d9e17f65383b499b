"""Waiting at start-up for what a component depends on, with exponential back-off.

Started beside its dependency (static pods: etcd, then the API server, then the rest), a
component retries until the dependency answers instead of exiting and being restarted,
as upstream's components do with k8s.io/apimachinery's ``wait.ExponentialBackoff``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")


async def retry_with_backoff(attempt: Callable[[], Awaitable[T]],
                             retry_on: type[BaseException] | tuple[type[BaseException], ...],
                             what: str, log: logging.Logger, *, initial: float = 0.05,
                             maximum: float = 1.0, timeout: float | None = None) -> T:
    """``await attempt()`` until it raises nothing in ``retry_on``, sleeping ``initial``
    seconds after the first failure, doubling up to ``maximum``; other errors propagate.

    With ``timeout``, the last failure is raised once the next sleep would end past it.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = initial
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            log.info("waiting for %s: %s", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, maximum)
