"""tinykube.aio: wait_for (asyncio.wait_for without Python 3.11's lost cancellations) and
first_to_end."""

import asyncio
from pathlib import Path

import pytest

from tinykube import aio


async def test_a_cancellation_that_arrives_with_the_result_is_kept():
    """The waiting task is cancelled in the loop iteration the awaited result arrives in
    (a probe worker stopped as its command ends): it must end cancelled, not carry on."""
    done = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(aio.wait_for(done, 10))
    await asyncio.sleep(0)  # the waiter now waits for the future
    done.set_result("answer")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_past_its_timeout_the_awaited_is_cancelled():
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        await aio.wait_for(slow(), 0.05)
    assert started.is_set() and cancelled.is_set()


async def test_a_result_in_time_is_returned_and_none_waits_without_limit():
    async def answer() -> int:
        await asyncio.sleep(0.01)
        return 42

    assert await aio.wait_for(answer(), 5) == 42
    assert await aio.wait_for(answer(), None) == 42


def test_tinykube_waits_only_through_aio():
    """A new asyncio.wait_for would bring the lost cancellations back."""
    root = Path(aio.__file__).parent
    offenders = [str(p.relative_to(root.parent)) for p in sorted(root.rglob("*.py"))
                 if p.name != "aio.py" and "asyncio.wait_for(" in p.read_text()]
    assert offenders == []


async def test_first_to_end_cancels_and_awaits_the_other_pumps():
    other_cancelled = asyncio.Event()

    async def ends() -> None:
        await asyncio.sleep(0)

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            other_cancelled.set()

    await asyncio.wait_for(aio.first_to_end(ends(), forever()), 5)
    assert other_cancelled.is_set()


async def test_first_to_end_does_not_raise_a_pumps_error():
    async def fails() -> None:
        raise ConnectionResetError("the peer went away")

    await asyncio.wait_for(aio.first_to_end(fails(), asyncio.Event().wait()), 5)
