"""asyncio helpers every component shares.

``wait_for`` is ``asyncio.wait_for`` as Python 3.12 has it. Python 3.11's returns the
awaited result when the waiting task is cancelled in the same loop iteration as the result
arrives, and the cancellation is lost: a loop that waits with a timeout (a probe worker, a
pod worker, a heartbeat) then carries on, and whoever cancelled it and awaits its end
waits forever. Every wait with a timeout in tinykube goes through this one.
``first_to_end`` runs the two directions of a relay until one of them is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(aw: Awaitable[T], timeout: float | None) -> T:
    """Await ``aw``; after ``timeout`` seconds (None: never) cancel it and raise
    ``TimeoutError``. A cancellation of the caller always propagates."""
    async with asyncio.timeout(timeout):
        return await aw


async def first_to_end(*pumps: Awaitable[None]) -> None:
    """Run the pumps together until one ends (or fails); the others are then cancelled and
    awaited, so none outlives the call. Their errors are not raised: a relay is over either way."""
    tasks = [asyncio.ensure_future(pump) for pump in pumps]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
