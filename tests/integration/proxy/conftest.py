"""Fixtures shared by the kube-proxy integration tests."""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from tinykube.proxy.config import ProxyConfig
from tinykube.proxy.server import Proxy


@pytest.fixture
async def api(apiserver: Any) -> AsyncIterator[Any]:
    """A client of the ``apiserver`` fixture, closed after the test."""
    client = apiserver.client()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def start_proxy(api: Any) -> AsyncIterator[Callable[..., Awaitable[Proxy]]]:
    """Starts a Proxy for node-1 against ``api`` (syncing without delay, health and metrics
    on free loopback ports, the other ProxyConfig fields as given); stopped after the test."""
    started: list[Proxy] = []

    async def start(**config: Any) -> Proxy:
        proxy = Proxy(ProxyConfig(client=api, node_name="node-1", min_sync_period=0,
                                  healthz_bind_address="127.0.0.1:0",
                                  metrics_bind_address="127.0.0.1:0", **config))
        await proxy.start()
        started.append(proxy)
        return proxy

    try:
        yield start
    finally:
        for proxy in started:
            await proxy.stop()
