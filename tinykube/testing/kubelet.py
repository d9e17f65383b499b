"""pytest fixtures: kubelets on loopback against the ``apiserver`` fixture.

``kubelet_factory(**config_fields)`` starts a :class:`tinykube.kubelet.Kubelet` with free
ports, a temporary root dir and (as root) its own bridge, pod CIDR and Service CIDR, so
tests never collide with each other or with a real node; everything is stopped and removed
at the end of the test. ``wait_for_pod(client, ns, name, predicate)`` waits on a watch.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest_asyncio

from tinykube.api.errors import ApiError
from tinykube.kubelet import Kubelet, KubeletConfig

Factory = Callable[..., Awaitable[Kubelet]]


def private_network() -> dict[str, str]:
    """A bridge name and address ranges private to one test."""
    n = secrets.randbelow(250) + 1
    return {"bridge": f"tkt{secrets.token_hex(4)}", "pod_cidr": f"10.250.{n}.0/24",
            "service_cidr": f"10.251.{n}.0/28"}


@pytest_asyncio.fixture
async def kubelet_factory(apiserver: Any) -> AsyncIterator[Factory]:
    started: list[Kubelet] = []
    tmp = tempfile.TemporaryDirectory(prefix="tinykube-kubelet-")

    async def ensure_service_account(namespace: str = "default") -> None:
        """What the serviceaccount and root-ca-cert-publisher controllers would create."""
        async with apiserver.client() as client:
            objects = [("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                            "metadata": {"name": "default"}}),
                       ("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "kube-root-ca.crt"},
                                       "data": {"ca.crt": getattr(apiserver.server, "ca_pem", "")}})]
            for resource, obj in objects:
                try:
                    await client.resource(resource).create(obj, namespace=namespace)
                except ApiError as exc:
                    if exc.code != 409:
                        raise

    async def start(node_name: str = "node-1", **fields: Any) -> Kubelet:
        await ensure_service_account()
        net = private_network()
        defaults: dict[str, Any] = dict(root_dir=f"{tmp.name}/{node_name}", port=0, healthz_port=0,
                                        node_status_update_frequency=1.0, remove_bridge_on_stop=True,
                                        cluster_dns=["10.96.0.10"], **net)
        defaults.update(fields)
        if "client" not in defaults and "kubeconfig" not in defaults:
            defaults["client"] = apiserver.client()
        kubelet = Kubelet(KubeletConfig(node_name=node_name, **defaults))
        await kubelet.start()
        started.append(kubelet)
        return kubelet

    try:
        yield start
    finally:
        for kubelet in reversed(started):
            await kubelet.stop()
            client = kubelet.config.client
            if client is not None:
                await client.close()
        tmp.cleanup()


async def wait_for_pod(client: Any, namespace: str, name: str, predicate: Callable[[dict], bool],
                       timeout: float = 20.0) -> dict:
    """The pod once ``predicate(pod)`` holds, watching for changes; raises TimeoutError."""
    pods = client.resource("pods")

    async def watch() -> dict:
        while True:
            listed = await pods.list(namespace=namespace, field_selector=f"metadata.name={name}")
            for pod in listed.get("items", []):
                if predicate(pod):
                    return pod
            rv = listed["metadata"]["resourceVersion"]
            async for _type, pod in pods.watch(namespace=namespace, field_selector=f"metadata.name={name}",
                                               resource_version=rv, timeout_seconds=int(timeout) + 1):
                if _type in ("ADDED", "MODIFIED") and predicate(pod):
                    return pod

    return await asyncio.wait_for(watch(), timeout)
