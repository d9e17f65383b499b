"""The dashboard's view of the cluster: one informer per shown resource, read as pages.

Everything the pages show comes from informer caches (list + watch through the API
server), so opening a page costs no API request and every change reaches the feed.
"""

from __future__ import annotations

import time
from typing import Any

from tinykube.api import meta, pods
from tinykube.client.informer import InformerFactory
from tinykube.client.rest import Client
from tinykube.dashboard import views
from tinykube.dashboard.feed import Change, Feed

Obj = dict[str, Any]

# informer name -> (resource, group)
RESOURCES: dict[str, tuple[str, str | None]] = {
    "nodes": ("nodes", None),
    "namespaces": ("namespaces", None),
    "pods": ("pods", None),
    "deployments": ("deployments", "apps"),
    "replicasets": ("replicasets", "apps"),
    "services": ("services", None),
    "endpoints": ("endpoints", None),
    "events": ("events", None),
    "leases": ("leases", "coordination.k8s.io"),
}

PAGES = ("overview", "namespaces", "workloads", "services", "events")
NODE_INDEX = "spec.nodeName"
EVENTS_PAGE_LIMIT = 500  # newest first; a page of thousands of events helps nobody


class ClusterState:
    """Informer caches of the shown resources, and the page data computed from them."""

    def __init__(self, client: Client, feed: Feed) -> None:
        self.factory = InformerFactory(client)
        self.informers = {name: self.factory.informer(resource, group)
                          for name, (resource, group) in RESOURCES.items()}
        # a node's change needs only its own pods counted, not every pod in the cluster
        self.informers["pods"].add_index(NODE_INDEX, lambda p: [pods.node_name(p)])
        for name, informer in self.informers.items():
            informer.add_handlers(**feed.handlers(name))

    async def start(self) -> None:
        await self.factory.start_all()

    async def stop(self) -> None:
        await self.factory.stop_all()

    def objects(self, name: str, namespace: str | None = None) -> list[Obj]:
        return views.in_namespace(self.informers[name].cache.list(), namespace)

    def page(self, page: str, namespace: str | None = None, *, involved: str | None = None,
             now: float | None = None) -> Obj:
        """The JSON document of one page (``PAGES``); ``namespace`` narrows namespaced rows."""
        now = time.time() if now is None else now
        if page == "overview":
            return views.overview(self.objects("nodes"), self.objects("pods"), now,
                                  self.objects("leases"))
        if page == "namespaces":
            return {"namespaces": views.namespace_rows(
                self.objects("namespaces"), self.objects("pods"), now)}
        if page == "workloads":
            return views.workload_rows(self.objects("deployments", namespace),
                                       self.objects("replicasets", namespace),
                                       self.objects("pods", namespace), now)
        if page == "services":
            endpoints = {meta.key(e): e for e in self.objects("endpoints", namespace)}
            return {"services": views.service_rows(
                self.objects("services", namespace), endpoints, now)}
        if page == "events":
            return {"events": views.event_rows(self.objects("events", namespace), now,
                                               involved=involved, limit=EVENTS_PAGE_LIMIT)}
        raise KeyError(page)

    def change_row(self, change: Change, now: float | None = None) -> Obj:
        """The SSE payload of one change: which object, and its row as the pages show it."""
        now = time.time() if now is None else now
        obj = change.obj
        row: Obj
        if change.resource == "nodes":
            name = meta.name(obj)
            counts = views.pods_per_node(self.informers["pods"].cache.by_index(NODE_INDEX, name))
            lease = self.informers["leases"].cache.get(f"{views.NODE_LEASE_NAMESPACE}/{name}")
            row = views.node_row(obj, counts[name], now, lease)
        elif change.resource == "pods":
            row = views.pod_row(obj, now)
        elif change.resource == "deployments":
            row = views.deployment_row(obj, now)
        elif change.resource == "replicasets":
            row = views.replicaset_row(obj, now)
        elif change.resource == "services":
            row = views.service_row(obj, self.informers["endpoints"].cache.get(meta.key(obj)),
                                    now)
        elif change.resource == "events":
            row = views.event_row(obj, now)
        elif change.resource == "leases":
            row = views.lease_row(obj, now)
        else:
            row = {"namespace": meta.namespace(obj), "name": meta.name(obj)}
        return {"resource": change.resource, "type": change.type,
                "namespace": meta.namespace(obj), "name": meta.name(obj), "row": row}
