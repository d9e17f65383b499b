"""What a new cluster starts with, as kube-apiserver's bootstrap controllers create it.

The system namespaces, the ``kubernetes`` Service (first ClusterIP, port 443 to this
server) with its Endpoints and EndpointSlice, and the two system PriorityClasses.
Idempotent: on every start existing objects are kept and the endpoints re-pointed at the
current address and port.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from tinykube.api import errors, meta
from tinykube.api.defaults import apply_defaults
from tinykube.api.kinds import ResourceInfo, lookup
from tinykube.apiserver.objects import Objects
from tinykube.apiserver.registry.allocator import AlreadyAllocated

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PRIORITY_CLASSES = (
    ("system-cluster-critical", 2000000000,
     "Used for system critical pods that must run in the cluster, but can be moved to "
     "another node if necessary."),
    ("system-node-critical", 2000001000,
     "Used for system critical pods that must not be moved from their current node."),
)

NAMESPACES = lookup("", "v1", "namespaces")
SERVICES = lookup("", "v1", "services")
ENDPOINTS = lookup("", "v1", "endpoints")
SLICES = lookup("discovery.k8s.io", "v1", "endpointslices")
PRIORITY = lookup("scheduling.k8s.io", "v1", "priorityclasses")

Reconcile = Callable[[dict], dict | None]


async def ensure(server: "APIServer", info: ResourceInfo, obj: dict,
                 reconcile: Reconcile | None = None) -> None:
    """Create ``obj`` if absent; else let ``reconcile`` return a changed copy to store."""
    objects = Objects(server.store, info)
    namespace, name = meta.namespace(obj), meta.name(obj)
    found = await objects.get_or_none(namespace, name)
    if found is None:
        md = meta.ensure_metadata(obj)
        md.setdefault("uid", meta.new_uid())
        md.setdefault("creationTimestamp", meta.now())
        obj.setdefault("apiVersion", info.api_version)
        obj.setdefault("kind", info.kind)
        apply_defaults(info, obj)
        try:
            await objects.create(namespace, name, obj)
        except errors.ApiError as err:
            if err.reason != "AlreadyExists":
                raise
        return
    if reconcile is not None:
        current, revision = found
        changed = reconcile(current)
        if changed is not None:
            await objects.update(namespace, name, changed, revision)


async def bootstrap(server: "APIServer") -> None:
    for name in SYSTEM_NAMESPACES:
        await ensure(server, NAMESPACES, {
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    for name, value, description in PRIORITY_CLASSES:
        await ensure(server, PRIORITY, {"metadata": {"name": name}, "value": value,
                                        "description": description,
                                        "preemptionPolicy": "PreemptLowerPriority"})
    await _kubernetes_service(server)
    if "RBAC" in (m.strip() for m in server.config.authorization_mode.split(",")):
        from tinykube.apiserver.rbac import bootstrap_policy

        await bootstrap_policy(server)


def _advertise(server: "APIServer") -> str:
    address = server.config.advertise_address or server.config.bind_address
    return "127.0.0.1" if address in ("0.0.0.0", "", "::") else address


async def _kubernetes_service(server: "APIServer") -> None:
    address, port = _advertise(server), server.port
    cluster_ip = server.cluster_ips.address_of(0)
    try:
        await server.cluster_ips.allocate(cluster_ip)
    except AlreadyAllocated:
        pass  # allocated by an earlier start: the Service keeps it
    labels = {"component": "apiserver", "provider": "kubernetes"}
    service_port = {"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}

    def service_reconcile(current: dict) -> dict | None:
        ports = (current.get("spec") or {}).get("ports") or []
        if ports == [service_port]:
            return None
        current["spec"]["ports"] = [service_port]
        return current

    await ensure(server, SERVICES, {
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": [service_port], "sessionAffinity": "None",
                 "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {}}}, service_reconcile)
    subsets = [{"addresses": [{"ip": address}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]

    def endpoints_reconcile(current: dict) -> dict | None:
        if current.get("subsets") == subsets:
            return None
        current["subsets"] = subsets
        return current

    await ensure(server, ENDPOINTS, {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets}, endpoints_reconcile)
    endpoints = [{"addresses": [address], "conditions": {"ready": True}}]
    slice_ports = [{"name": "https", "port": port, "protocol": "TCP"}]

    def slice_reconcile(current: dict) -> dict | None:
        if current.get("endpoints") == endpoints and current.get("ports") == slice_ports:
            return None
        current["endpoints"], current["ports"] = endpoints, slice_ports
        return current

    await ensure(server, SLICES, {
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4", "endpoints": endpoints, "ports": slice_ports}, slice_reconcile)
