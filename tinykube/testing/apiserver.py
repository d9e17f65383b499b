"""pytest fixtures: an in-process API server on a free loopback port.

``apiserver`` is a started server over a fresh ``memory://`` store; ``apiserver_factory``
starts more (other stores, other flags) and stops them all at the end of the test.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest_asyncio

from tinykube.apiserver.server import APIServer, APIServerConfig


class RunningAPIServer:
    """A started API server and what a test needs to talk to it."""

    def __init__(self, server: APIServer, kubeconfig: str, token: str | None):
        self.server = server
        self.kubeconfig = kubeconfig
        self.token = token

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def client(self, **kwargs: Any):
        """A ``tinykube.client.rest.Client`` for this server (close it, or ``async with``)."""
        from tinykube.client.rest import Client

        if self.token and "token" not in kwargs:
            kwargs["token"] = self.token
        return Client(self.url, **kwargs)

    async def request(self, method: str, path: str, body: Any = None, *,
                      content_type: str | None = None, headers: dict[str, str] | None = None,
                      params: dict[str, str] | None = None) -> tuple[int, Any]:
        """One HTTP request over loopback: (status, decoded JSON body or text).

        A dict/list ``body`` is sent as JSON unless ``content_type`` says otherwise; bytes
        and str are sent as they are.
        """
        import aiohttp
        import orjson

        send_headers = dict(headers or {})
        if self.token:
            send_headers.setdefault("Authorization", f"Bearer {self.token}")
        data: bytes | str | None
        if isinstance(body, (dict, list)):
            data = orjson.dumps(body)
            send_headers.setdefault("Content-Type", content_type or "application/json")
        else:
            data = body
            if content_type:
                send_headers["Content-Type"] = content_type
        async with aiohttp.ClientSession() as session:
            async with session.request(method, self.url + path, data=data,
                                       headers=send_headers, params=params) as resp:
                raw = await resp.read()
                if resp.content_type == "application/json":
                    return resp.status, orjson.loads(raw) if raw else None
                return resp.status, raw.decode(errors="replace")

    async def stop(self) -> None:
        await self.server.stop()


Factory = Callable[..., Awaitable[RunningAPIServer]]


@pytest_asyncio.fixture
async def apiserver_factory() -> AsyncIterator[Factory]:
    """``await apiserver_factory(store_url=..., token=..., **config_fields)``."""
    started: list[RunningAPIServer] = []
    tmp = tempfile.TemporaryDirectory(prefix="tinykube-apiserver-")

    async def start(store_url: str = "memory://", token: str | None = None,
                    **fields: Any) -> RunningAPIServer:
        index = len(started)
        kubeconfig = os.path.join(tmp.name, f"kubeconfig-{index}")
        if token and "token_file" not in fields:
            token_file = os.path.join(tmp.name, f"tokens-{index}.csv")
            with open(token_file, "w") as f:
                f.write(f'{token},admin,admin-uid,"system:masters"\n')
            fields["token_file"] = token_file
        known = {f.name for f in dataclasses.fields(APIServerConfig)}
        unknown = set(fields) - known
        if unknown:
            raise TypeError(f"unknown APIServerConfig fields: {sorted(unknown)}")
        config = APIServerConfig(store_url=store_url, bind_address="127.0.0.1", secure_port=0,
                                 **fields)
        server = APIServer(config)
        await server.start()
        server.write_kubeconfig(kubeconfig, token)
        running = RunningAPIServer(server, kubeconfig, token)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in reversed(started):
            await running.stop()
        tmp.cleanup()


@pytest_asyncio.fixture
async def apiserver(apiserver_factory: Factory) -> RunningAPIServer:
    """A started API server over a fresh in-memory store."""
    return await apiserver_factory()
