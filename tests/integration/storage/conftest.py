"""Fixtures for the store suites: one ``store`` fixture over every backend.

Each test gets a fresh key prefix, so the etcd variant can share one etcd per session.
"""

from __future__ import annotations

import uuid
from typing import AsyncIterator

import pytest

from tinykube.storage.store import Store, open_store

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("etcd", id="etcd", marks=pytest.mark.etcd),
]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.db'}"
    return request.getfixturevalue("etcd_server")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"/registry/test-{uuid.uuid4().hex[:12]}/"
