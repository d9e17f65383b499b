"""An in-process cluster for testing controllers, operators and manifests.

    from tinykube.testing import cluster

    async def test_my_operator():
        async with cluster(nodes=3) as c:
            await c.apply(my_deployment)
            ...  # c.client is a tinykube Client; c.kubeconfig works with kubectl and
                 # the official kubernetes client

Everything runs in the test's event loop: an API server over a temporary SQLite store on a
free loopback port, the controller manager (all controllers), the scheduler, and hollow
nodes whose pods become Running and Ready without processes. Starting it takes about a
second; nothing is left behind when the block exits.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

from tinykube import aio
from tinykube.api import kinds, meta
from tinykube.api.errors import ApiError


@dataclass
class Cluster:
    """A running in-process cluster."""

    url: str
    kubeconfig: str
    client: Any
    apiserver: Any
    controller_manager: Any
    scheduler: Any
    nodes: Any

    def resource(self, name: str, group: str | None = None) -> Any:
        return self.client.resource(name, group=group)

    async def apply(self, obj: dict) -> dict:
        """Create the object, or replace it if it exists (like ``kubectl apply``)."""
        info = kinds.by_kind(obj["apiVersion"], obj["kind"])
        if info is None:
            raise ValueError(f"unknown kind {obj['apiVersion']}/{obj['kind']}")
        resource = self.client.resource(info.resource, group=info.group)
        namespace = meta.namespace(obj) or ("default" if info.namespaced else None)
        try:
            return await resource.create(obj, namespace=namespace)
        except ApiError as exc:
            if exc.code != 409:
                raise
        live = await resource.get(meta.name(obj), namespace=namespace)
        obj = {**obj, "metadata": {**obj["metadata"],
                                   "resourceVersion": meta.resource_version(live)}}
        return await resource.update(obj)

    async def wait_for(self, resource: str, name: str, predicate: Any, *,
                       namespace: str | None = "default", group: str | None = None,
                       timeout: float = 30.0) -> dict:
        """Watch one object until ``predicate(obj)`` holds; returns that object."""
        rc = self.client.resource(resource, group=group)

        async def watch() -> dict:
            while True:
                listed = await rc.list(namespace=namespace,
                                       field_selector=f"metadata.name={name}")
                for item in listed.get("items", []):
                    if predicate(item):
                        return item
                async for event_type, obj in rc.watch(
                        namespace=namespace, field_selector=f"metadata.name={name}",
                        resource_version=listed["metadata"]["resourceVersion"],
                        timeout_seconds=int(timeout) + 1):
                    if event_type in ("ADDED", "MODIFIED") and predicate(obj):
                        return obj

        return await aio.wait_for(watch(), timeout)


@asynccontextmanager
async def cluster(*, nodes: int = 1, node_capacity: Any = None, scheduler: bool = True,
                  controllers: list[str] | None = None, store_url: str | None = None,
                  pod_start_delay: float = 0.0) -> AsyncIterator[Cluster]:
    """Start an API server, controllers, a scheduler and ``nodes`` hollow nodes."""
    from tinykube.apiserver.server import APIServer, APIServerConfig
    from tinykube.controllers.config import ControllerManagerConfig
    from tinykube.controllers.manager import ControllerManager
    from tinykube.kubelet.hollow import HollowNodes
    from tinykube.scheduler.scheduler import Scheduler, SchedulerConfig

    tmp = tempfile.TemporaryDirectory(prefix="tinykube-cluster-")
    store = store_url or f"sqlite://{os.path.join(tmp.name, 'state.db')}"
    server = APIServer(APIServerConfig(store_url=store, secure_port=0))
    started: list[Any] = []
    clients: list[Any] = []

    def new_client() -> Any:
        clients.append(server_client(server.url))
        return clients[-1]

    try:
        await server.start()
        started.append(server)
        kubeconfig = os.path.join(tmp.name, "kubeconfig")
        server.write_kubeconfig(kubeconfig, None)
        client = new_client()
        manager = ControllerManager(ControllerManagerConfig(
            client=new_client(), controllers=controllers or ["*"],
            leader_elect=False, secure_port=None, node_monitor_grace_period=40.0,
            pv_host_path_dir=os.path.join(tmp.name, "pv")))
        await manager.start()
        started.append(manager)
        sched = None
        if scheduler:
            sched = Scheduler(SchedulerConfig(client=new_client(),
                                              leader_elect=False, secure_port=-1))
            await sched.start()
            started.append(sched)
        hollow = None
        if nodes:
            hollow = HollowNodes(new_client(), count=nodes,
                                 capacity=node_capacity, start_delay=pod_start_delay,
                                 name_prefix="node-", delete_on_stop=False)
            await hollow.start()
            started.append(hollow)
        yield Cluster(server.url, kubeconfig, client, server, manager, sched, hollow)
    finally:
        for component in reversed(started):
            await component.stop()
        for each in clients:
            await each.close()
        tmp.cleanup()


def server_client(url: str) -> Any:
    from tinykube.client.rest import Client

    return Client(url, user_agent="tinykube-testing")
