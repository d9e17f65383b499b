"""What kube-proxy needs from Services and EndpointSlices, as small frozen values.

Raw object access stays in this module: the rule builders and the userspace proxier only
see `ServicePort` and `Endpoint`. A service port is named as upstream's ServicePortName
(`ns/name:portname`, no `:` when the port is unnamed); that string keys both maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping, NamedTuple

from tinykube.api import meta
from tinykube.api.meta import slice_service_key  # noqa: F401  (re-exported for proxy/changes)

DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; upstream's DefaultClientIPServiceAffinitySeconds


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, as kube-proxy programs it."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # "TCP" | "UDP" | "SCTP"
    port: int
    cluster_ip: str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    affinity_timeout: int = 0  # 0: no ClientIP session affinity
    external_traffic_local: bool = False
    internal_traffic_local: bool = False

    @cached_property
    def key(self) -> str:
        """Upstream's ServicePortName string, e.g. `default/web:http`."""
        suffix = f":{self.port_name}" if self.port_name else ""
        return f"{self.namespace}/{self.name}{suffix}"

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"


class Endpoint(NamedTuple):
    """One backend address of one service port (a tuple: cheap to build by the thousand)."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    zone: str = ""

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass
class Snapshot:
    """The proxier's view of the cluster: service ports and endpoints, by ServicePortName."""

    services: dict[str, ServicePort] = field(default_factory=dict)
    endpoints: dict[str, tuple[Endpoint, ...]] = field(default_factory=dict)


def _spec(svc: dict[str, Any]) -> dict[str, Any]:
    return svc.get("spec") or {}


def object_key(obj: dict[str, Any]) -> str:
    """`ns/name` of a namespaced object (the informer cache key)."""
    return meta.key(obj)


def is_proxied(svc: dict[str, Any]) -> bool:
    """kube-proxy skips headless and ExternalName services, as upstream does."""
    spec = _spec(svc)
    if spec.get("type") == "ExternalName":
        return False
    cluster_ip = spec.get("clusterIP") or ""
    return cluster_ip not in ("", "None")


def affinity_timeout(svc: dict[str, Any]) -> int:
    """ClientIP affinity timeout in seconds, 0 when the service has no affinity."""
    spec = _spec(svc)
    if spec.get("sessionAffinity") != "ClientIP":
        return 0
    config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
    return int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)


def service_ports(svc: dict[str, Any]) -> list[ServicePort]:
    """The ServicePorts of one Service object (empty for services kube-proxy ignores)."""
    if not is_proxied(svc):
        return []
    spec = _spec(svc)
    svc_type = spec.get("type") or "ClusterIP"
    has_node_ports = svc_type in ("NodePort", "LoadBalancer")
    timeout = affinity_timeout(svc)
    lb_ips: tuple[str, ...] = ()
    if svc_type == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(i["ip"] for i in ingress if i.get("ip"))
    result = []
    for port in spec.get("ports") or []:
        result.append(
            ServicePort(
                namespace=meta.namespace(svc),
                name=meta.name(svc),
                port_name=port.get("name") or "",
                protocol=(port.get("protocol") or "TCP").upper(),
                port=int(port["port"]),
                cluster_ip=spec["clusterIP"],
                node_port=int(port.get("nodePort") or 0) if has_node_ports else 0,
                external_ips=tuple(spec.get("externalIPs") or ()),
                load_balancer_ips=lb_ips,
                affinity_timeout=timeout,
                external_traffic_local=spec.get("externalTrafficPolicy") == "Local",
                internal_traffic_local=spec.get("internalTrafficPolicy") == "Local",
            )
        )
    return result


def _slice_addresses(slice_obj: dict[str, Any]) -> list[tuple[str, bool, bool, bool, str, str]]:
    """(ip, ready, serving, terminating, nodeName, zone) per address of one slice."""
    result = []
    for ep in slice_obj.get("endpoints") or []:
        conditions = ep.get("conditions") or {}
        ready = conditions.get("ready")
        ready = True if ready is None else bool(ready)  # nil ready means ready (upstream)
        serving = conditions.get("serving")
        serving = ready if serving is None else bool(serving)
        terminating = bool(conditions.get("terminating"))
        node, zone = ep.get("nodeName") or "", ep.get("zone") or ""
        result.extend((ip, ready, serving, terminating, node, zone) for ip in ep.get("addresses") or [])
    return result


def _slice_ports(slice_obj: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(name, PROTOCOL, number) of one slice's ports."""
    return [
        (port.get("name") or "", (port.get("protocol") or "TCP").upper(), int(port["port"]))
        for port in slice_obj.get("ports") or []
        if port.get("port") is not None
    ]


def merge_slices(
    service_key: str, slices: Iterable[dict[str, Any]]
) -> dict[str, tuple[Endpoint, ...]]:
    """`ServicePortName\0PROTOCOL` -> sorted, de-duplicated endpoints from all slices of one service."""
    merged: dict[str, set[Endpoint]] = {}
    for slice_obj in slices:
        if slice_obj.get("addressType", "IPv4") != "IPv4":
            continue
        ports = _slice_ports(slice_obj)
        if not ports:
            continue
        addresses = _slice_addresses(slice_obj)
        for name, proto, number in ports:
            key = f"{service_key}:{name}\0{proto}" if name else f"{service_key}\0{proto}"
            merged.setdefault(key, set()).update(
                Endpoint(ip, number, ready, serving, term, node, zone)
                for ip, ready, serving, term, node, zone in addresses
            )
    return {k: tuple(sorted(v)) for k, v in merged.items()}


def endpoints_for(port: ServicePort, merged: Mapping[str, tuple[Endpoint, ...]]) -> tuple[Endpoint, ...]:
    """Endpoints of one service port from `merge_slices` output."""
    return merged.get(f"{port.key}\0{port.protocol}", ())


def usable_endpoints(eps: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """Ready endpoints; when none is ready, serving terminating ones (upstream's fallback)."""
    eps = tuple(eps)
    ready = tuple(e for e in eps if e.ready)
    if ready:
        return ready
    return tuple(e for e in eps if e.serving and e.terminating)
