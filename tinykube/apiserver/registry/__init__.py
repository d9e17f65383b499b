"""Registry strategies, one per resource; ``strategy_for(info)`` picks the right one."""

from __future__ import annotations

from functools import cache
from typing import Callable

from tinykube.api.kinds import ResourceInfo
from tinykube.apiserver.registry.base import Strategy


def _factories() -> dict[str, Callable[[ResourceInfo], Strategy]]:
    from tinykube.apiserver.registry import events, jobs, namespaces, nodes, pods, services

    return {
        "pods": pods.PodStrategy,
        "services": services.ServiceStrategy,
        "namespaces": namespaces.NamespaceStrategy,
        "events": events.EventStrategy,
        "nodes": nodes.NodeStrategy,
        "jobs": jobs.JobStrategy,
    }


@cache
def strategy_for(info: ResourceInfo) -> Strategy:
    factory = _factories().get(info.resource, Strategy)
    return factory(info)
