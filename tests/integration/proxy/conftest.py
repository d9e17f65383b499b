"""Fixtures shared by the kube-proxy integration tests."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest


@pytest.fixture
async def api(apiserver: Any) -> AsyncIterator[Any]:
    """A client of the ``apiserver`` fixture, closed after the test."""
    client = apiserver.client()
    try:
        yield client
    finally:
        await client.close()
