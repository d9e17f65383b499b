"""1,000 concurrent clients and abruptly dropped watches leave the server healthy."""

from __future__ import annotations

import asyncio

import aiohttp

from tinykube.api.kinds import lookup

CM_PATH = "/api/v1/namespaces/default/configmaps"
CLIENTS = 1000
TIMEOUT = 60


async def test_thousand_concurrent_clients_and_dropped_watches(apiserver):
    url = apiserver.url
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    resource_cache = apiserver.server.watch_cache.cache_for(lookup("", "v1", "configmaps"))
    watchers_before = len(resource_cache.watchers)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(i: int) -> int:
            if i % 4 == 0:
                async with session.post(url + CM_PATH, json={"metadata": {"name": f"c{i}"}}) \
                        as resp:
                    return resp.status
            if i % 4 == 1:
                async with session.get(url + CM_PATH + "?limit=50") as resp:
                    await resp.read()
                    return resp.status
            if i % 4 == 2:
                async with session.get(url + "/api/v1/namespaces/default") as resp:
                    await resp.read()
                    return resp.status
            # a watch that is dropped right after its first bytes arrive
            resp = await session.get(url + CM_PATH + "?watch=1&resourceVersion=0")
            status = resp.status
            await resp.content.readany()
            resp.close()
            return status

        statuses = await asyncio.wait_for(
            asyncio.gather(*(client(i) for i in range(CLIENTS))), TIMEOUT)
    assert statuses.count(201) == CLIENTS // 4
    assert all(s in (200, 201) for s in statuses)

    async def watchers_gone():
        while len(resource_cache.watchers) > watchers_before:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(watchers_gone(), TIMEOUT)
    status, lst = await apiserver.request("GET", CM_PATH)
    assert status == 200 and len(lst["items"]) == CLIENTS // 4
    status, _ = await apiserver.request("POST", CM_PATH, {"metadata": {"name": "after"}})
    assert status == 201
