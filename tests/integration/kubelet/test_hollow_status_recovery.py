"""A live hollow node re-posts Ready when someone else marked it Unknown (as the node
lifecycle controller does to a node that was silent for its grace period)."""

from __future__ import annotations

import asyncio

from tinykube.kubelet.hollow import HollowNodes


def _ready(node: dict) -> str | None:
    for condition in (node.get("status") or {}).get("conditions") or ():
        if condition["type"] == "Ready":
            return condition["status"]
    return None


async def _watch_until(nodes, name: str, predicate, timeout: float = 20.0) -> dict:
    async def until() -> dict:
        current = await nodes.get(name)
        if predicate(current):
            return current
        async for _type, obj in nodes.watch(field_selector=f"metadata.name={name}",
                                            resource_version=current["metadata"][
                                                "resourceVersion"]):
            if predicate(obj):
                return obj
        raise AssertionError("watch ended")
    return await asyncio.wait_for(until(), timeout)


async def test_hollow_node_reposts_ready_after_being_marked_unknown(apiserver):
    async with apiserver.client() as client:
        hollow = HollowNodes(client, count=2, name_prefix="recover-", lease_interval=0.2,
                             manage_pods=False)
        await hollow.start()
        try:
            nodes = client.resource("nodes")
            node = await nodes.get("recover-0")
            unknown = [{**c, "status": "Unknown", "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status."}
                       if c["type"] == "Ready" else c for c in node["status"]["conditions"]]
            await nodes.patch("recover-0", {"status": {"conditions": unknown}},
                              subresource="status")
            recovered = await _watch_until(nodes, "recover-0", lambda n: _ready(n) == "True")
            ready = next(c for c in recovered["status"]["conditions"] if c["type"] == "Ready")
            assert ready["reason"] == "KubeletReady"

            # A silenced node stays as it was marked.
            hollow.stop_heartbeat("recover-1")
            node = await nodes.get("recover-1")
            unknown = [{**c, "status": "Unknown"} if c["type"] == "Ready" else c
                       for c in node["status"]["conditions"]]
            await nodes.patch("recover-1", {"status": {"conditions": unknown}},
                              subresource="status")
            await hollow.heartbeat_once()
            assert "recover-1" not in hollow._stale
            assert _ready(await nodes.get("recover-1")) == "Unknown"
        finally:
            await hollow.stop()
