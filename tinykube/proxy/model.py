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


_new_object = object.__new__
_set_attribute = object.__setattr__
_new_tuple = tuple.__new__
_PROTOCOLS = {"TCP": "TCP", "UDP": "UDP", "SCTP": "SCTP"}  # already upper case: no .upper()
_READY = {"ready": True, "serving": True, "terminating": False}
_NO_CONDITIONS: dict[str, Any] = {}


def _protocol(value: Any) -> str:
    """A port's protocol, upper-cased, TCP when unset."""
    protocol = _PROTOCOLS.get(value) if type(value) is str else None
    return protocol if protocol is not None else (value or "TCP").upper()


def service_ports(svc: dict[str, Any]) -> list[ServicePort]:
    """The ServicePorts of one Service object (empty for services kube-proxy ignores).

    The values are built without the frozen dataclass's `__init__` (one `object.__setattr__`
    per field, ~5 us a port) and with `key` already cached: the same values, a few times
    cheaper, which matters when a full sync folds ten thousand services."""
    spec = svc.get("spec") or {}
    svc_type = spec.get("type")
    if svc_type == "ExternalName":
        return []
    cluster_ip = spec.get("clusterIP") or ""
    if cluster_ip == "None" or not cluster_ip:
        return []
    svc_type = svc_type or "ClusterIP"
    has_node_ports = svc_type == "NodePort" or svc_type == "LoadBalancer"
    timeout = affinity_timeout(svc) if spec.get("sessionAffinity") == "ClientIP" else 0
    lb_ips: tuple[str, ...] = ()
    if svc_type == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb_ips = tuple(i["ip"] for i in ingress if i.get("ip"))
    md = svc.get("metadata")
    if type(md) is not dict:
        md = meta.metadata(svc)
    namespace, name = md.get("namespace") or "", md.get("name") or ""
    prefix = f"{namespace}/{name}"
    external_ips = tuple(spec.get("externalIPs") or ())
    external_local = spec.get("externalTrafficPolicy") == "Local"
    internal_local = spec.get("internalTrafficPolicy") == "Local"
    result = []
    for port in spec.get("ports") or ():
        port_name = port.get("name") or ""
        protocol = port.get("protocol")
        protocol = _PROTOCOLS.get(protocol) if type(protocol) is str else None  # _protocol, inline
        if protocol is None:
            protocol = _protocol(port.get("protocol"))
        number = port["port"]
        if type(number) is not int:
            number = int(number)
        node_port = 0
        if has_node_ports:
            node_port = port.get("nodePort") or 0
            if type(node_port) is not int:
                node_port = int(node_port)
        value = _new_object(ServicePort)
        _set_attribute(value, "__dict__", {
            "namespace": namespace,
            "name": name,
            "port_name": port_name,
            "protocol": protocol,
            "port": number,
            "cluster_ip": cluster_ip,
            "node_port": node_port,
            "external_ips": external_ips,
            "load_balancer_ips": lb_ips,
            "affinity_timeout": timeout,
            "external_traffic_local": external_local,
            "internal_traffic_local": internal_local,
            "key": f"{prefix}:{port_name}" if port_name else prefix,  # the cached_property
        })
        result.append(value)
    return result


def _slice_addresses(slice_obj: dict[str, Any]) -> list[tuple[str, bool, bool, bool, str, str]]:
    """(ip, ready, serving, terminating, nodeName, zone) per address of one slice."""
    result = []
    for ep in slice_obj.get("endpoints") or ():
        get = ep.get
        conditions = get("conditions") or _NO_CONDITIONS
        if conditions == _READY:  # the usual case (a dict compare): what the branch below gives
            ready, serving, terminating = True, True, False
        else:
            ready = conditions.get("ready")
            ready = ready is None or bool(ready)  # nil ready means ready (upstream)
            serving = conditions.get("serving")
            serving = ready if serving is None else bool(serving)
            terminating = bool(conditions.get("terminating"))
        node, zone = get("nodeName") or "", get("zone") or ""
        addresses = get("addresses") or ()
        if type(addresses) is list and len(addresses) == 1:
            result.append((addresses[0], ready, serving, terminating, node, zone))
        else:
            result.extend((ip, ready, serving, terminating, node, zone) for ip in addresses)
    return result


def _slice_ports(slice_obj: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(name, PROTOCOL, number) of one slice's ports."""
    result = []
    for port in slice_obj.get("ports") or ():
        get = port.get
        number = get("port")
        if number is not None:
            result.append((get("name") or "", _protocol(get("protocol")),
                           number if type(number) is int else int(number)))
    return result


def merge_slices(
    service_key: str, slices: Iterable[dict[str, Any]]
) -> dict[str, tuple[Endpoint, ...]]:
    """`ServicePortName\0PROTOCOL` -> sorted, de-duplicated endpoints from all slices of one service."""
    merged: dict[str, list[Endpoint]] = {}
    for slice_obj in slices:
        if slice_obj.get("addressType", "IPv4") != "IPv4":
            continue
        ports = _slice_ports(slice_obj)
        if not ports:
            continue
        addresses = _slice_addresses(slice_obj)
        for name, proto, number in ports:
            key = f"{service_key}:{name}\0{proto}" if name else f"{service_key}\0{proto}"
            eps = [_new_tuple(Endpoint, (ip, number, ready, serving, term, node, zone))
                   for ip, ready, serving, term, node, zone in addresses]
            if key in merged:
                merged[key] += eps
            else:
                merged[key] = eps
    return {k: tuple(sorted(set(v))) for k, v in merged.items()}


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
