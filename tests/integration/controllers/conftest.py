"""Fixtures shared by the controller integration tests."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest


@pytest.fixture
async def api(apiserver: Any) -> AsyncIterator[Any]:
    """A client of the ``apiserver`` fixture (TLS unverified), closed after the test."""
    client = apiserver.client(insecure=True)
    yield client
    await client.close()
