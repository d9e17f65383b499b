"""The dashboard's write actions, each one API request as kubectl would make it.

``kubectl scale`` patches the ``scale`` subresource; ``kubectl delete pod`` deletes with
the default grace period. The controllers' reaction (new ReplicaSet sizes, replacement
pods, their Events) then arrives through the informers like any other change.
"""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import bad_request
from tinykube.client.rest import Client

Obj = dict[str, Any]

MAX_REPLICAS = 10_000


def parse_replicas(body: Any) -> int:
    """The ``replicas`` of a scale request body; a 400 ApiError when it is not a count."""
    value = body.get("replicas") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request("replicas must be an integer")
    if not 0 <= value <= MAX_REPLICAS:
        raise bad_request(f"replicas must be between 0 and {MAX_REPLICAS}")
    return value


async def scale_deployment(client: Client, namespace: str, name: str, replicas: int) -> Obj:
    """Set ``spec.replicas`` through ``deployments/scale``; returns the Scale object."""
    return await client.resource("deployments", "apps").patch(
        name, {"spec": {"replicas": replicas}}, namespace=namespace, patch_type="merge",
        subresource="scale", field_manager="tinykube-dashboard")


async def delete_pod(client: Client, namespace: str, name: str) -> Obj:
    """Delete one pod; its controller (if any) will replace it."""
    return await client.resource("pods").delete(name, namespace=namespace)

