"""retry_with_backoff retries only the errors it is told to, doubling the delay."""

from __future__ import annotations

import logging

import pytest

from tinykube.client.wait import retry_with_backoff

log = logging.getLogger(__name__)


def flaky(failures: int, error: type[Exception] = ConnectionError):
    calls = []

    async def attempt() -> int:
        calls.append(1)
        if len(calls) <= failures:
            raise error("not yet")
        return len(calls)

    return attempt, calls


async def test_retries_until_success():
    attempt, _ = flaky(3)
    assert await retry_with_backoff(attempt, OSError, "it", log, initial=0.001) == 4


async def test_other_errors_propagate_at_once():
    attempt, calls = flaky(1, ValueError)
    with pytest.raises(ValueError):
        await retry_with_backoff(attempt, OSError, "it", log, initial=0.001)
    assert len(calls) == 1


async def test_timeout_raises_the_last_failure():
    attempt, calls = flaky(1000)
    with pytest.raises(ConnectionError):
        await retry_with_backoff(attempt, OSError, "it", log, initial=0.01, maximum=0.01,
                                 timeout=0.05)
    assert 2 <= len(calls) <= 7
