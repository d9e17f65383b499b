"""The desired nftables state, computed from service ports and endpoints without I/O.

The layout follows upstream's nftables proxier: a table of its own (`ip kube-proxy`) whose
base chains hook nat prerouting/output/postrouting and filter input/forward/output; the
`services` chain dispatches through the `service-ips` and `service-nodeports` verdict maps;
each service port has a `service-<hash>-ns/name/proto/port` chain that spreads over
`endpoint-<hash>-...__ip/port` chains with `numgen random` draws; ports without
endpoints are rejected through the `no-endpoint-*` maps before DNAT. ClientIP affinity
uses one timeout set per endpoint. Because Services live in map elements, not rules, a
sync adds and deletes elements instead of rewriting long chains.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from tinykube.proxy.iptables.rules import MasqueradeConfig, _base32_16
from tinykube.proxy.model import Endpoint, ServicePort, Snapshot, usable_endpoints

SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
MAPS = {
    SERVICE_IPS: "ipv4_addr . inet_proto . inet_service : verdict",
    SERVICE_NODEPORTS: "inet_proto . inet_service : verdict",
    NO_ENDPOINT_SERVICES: "ipv4_addr . inet_proto . inet_service : verdict",
    NO_ENDPOINT_NODEPORTS: "inet_proto . inet_service : verdict",
}


@dataclass(frozen=True)
class NftConfig(MasqueradeConfig):
    """The settings that shape the nftables rules."""

    table: str = "kube-proxy"


def _hash8(text: str) -> str:
    return _base32_16(hashlib.sha256(text.encode()).digest())[:8]


def chain_base(port: ServicePort) -> str:
    proto = port.protocol.lower()
    return f"{_hash8(port.key + proto)}-{port.namespace}/{port.name}/{proto}/{port.port_name}"


def service_chain(port: ServicePort) -> str:
    return "service-" + chain_base(port)


def external_chain(port: ServicePort) -> str:
    return "external-" + chain_base(port)


def endpoint_base(port: ServicePort, ep: Endpoint) -> str:
    proto = port.protocol.lower()
    return (f"{_hash8(port.key + proto + ep.address)}-{port.namespace}/{port.name}/{proto}/"
            f"{port.port_name}__{ep.ip}/{ep.port}")


def endpoint_chain(port: ServicePort, ep: Endpoint) -> str:
    return "endpoint-" + endpoint_base(port, ep)


def affinity_set(port: ServicePort, ep: Endpoint) -> str:
    return "affinity-" + endpoint_base(port, ep)


@dataclass(frozen=True)
class NftPiece:
    """Everything one service port contributes: own chains and sets, and map elements."""

    chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sets: Mapping[str, int] = field(default_factory=dict)  # affinity set -> timeout seconds
    elements: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # map -> key -> verdict


def service_port_piece(cfg: NftConfig, port: ServicePort, endpoints: Iterable[Endpoint]) -> NftPiece:
    usable = usable_endpoints(endpoints)
    local = tuple(e for e in usable if e.node_name == cfg.node_name)
    cluster_eps = local if port.internal_traffic_local else usable
    ext_eps = local if port.external_traffic_local else usable
    proto = port.protocol.lower()
    svc, ext = service_chain(port), external_chain(port)
    chains: dict[str, tuple[str, ...]] = {}
    sets: dict[str, int] = {}
    elements: dict[str, dict[str, str]] = {m: {} for m in MAPS}
    reject = "goto reject-chain"
    cluster_key = f"{port.cluster_ip} . {proto} . {port.port}"
    if cluster_eps:
        elements[SERVICE_IPS][cluster_key] = f"goto {svc}"
    else:
        elements[NO_ENDPOINT_SERVICES][cluster_key] = "drop" if port.internal_traffic_local and usable else reject
    external_ips = port.external_ips + port.load_balancer_ips
    for ip in external_ips:
        key = f"{ip} . {proto} . {port.port}"
        if ext_eps:
            elements[SERVICE_IPS][key] = f"goto {ext}"
        else:
            elements[NO_ENDPOINT_SERVICES][key] = reject
    if port.node_port:
        key = f"{proto} . {port.node_port}"
        if ext_eps:
            elements[SERVICE_NODEPORTS][key] = f"goto {ext}"
        else:
            elements[NO_ENDPOINT_NODEPORTS][key] = "drop" if port.external_traffic_local and usable else reject
    if cluster_eps or ext_eps:
        lines: list[str] = []
        dest = f"ip daddr {port.cluster_ip} {proto} dport {port.port}"
        if cfg.masquerade_all:
            lines.append(f"{dest} jump mark-for-masquerade")
        elif cfg.cluster_cidr:
            lines.append(f"{dest} ip saddr != {cfg.cluster_cidr} jump mark-for-masquerade")
        lines += _balance(port, cluster_eps)
        chains[svc] = tuple(lines)
        for ep in usable:
            chains[endpoint_chain(port, ep)] = _endpoint_rules(port, ep)
            if port.affinity_timeout:
                sets[affinity_set(port, ep)] = port.affinity_timeout
    if (port.node_port or external_ips) and ext_eps:
        if port.external_traffic_local:
            local_lines = []
            if cfg.cluster_cidr:
                local_lines.append(f"ip saddr {cfg.cluster_cidr} goto {svc}")
            local_lines += ["fib saddr type local jump mark-for-masquerade", f"fib saddr type local goto {svc}"]
            local_lines += _balance(port, local)
            chains[ext] = tuple(local_lines)
        else:
            chains[ext] = ("jump mark-for-masquerade", f"goto {svc}")
    return NftPiece(chains=chains, sets=sets, elements={m: e for m, e in elements.items() if e})


def _balance(port: ServicePort, eps: tuple[Endpoint, ...]) -> list[str]:
    """Affinity lookups, then endpoint i of n taken with probability 1/(n-i), like iptables.

    Upstream writes one `numgen random mod N vmap { ... }`; each such inline map is an
    anonymous set, and nft's cost of adding ten thousand of them grows quadratically
    (10,000 Services: over a minute). A cascade of `numgen random mod k == 0` rules draws
    the same distribution with no sets at all.
    """
    lines = []
    if port.affinity_timeout:
        lines += [f"ip saddr @{affinity_set(port, ep)} goto {endpoint_chain(port, ep)}" for ep in eps]
    n = len(eps)
    for i, ep in enumerate(eps):
        draw = f"numgen random mod {n - i} == 0 " if i < n - 1 else ""
        lines.append(f"{draw}goto {endpoint_chain(port, ep)}")
    return lines


def _endpoint_rules(port: ServicePort, ep: Endpoint) -> tuple[str, ...]:
    proto = port.protocol.lower()
    lines = [f"ip saddr {ep.ip} jump mark-for-masquerade"]
    if port.affinity_timeout:
        lines.append(f"update @{affinity_set(port, ep)} {{ ip saddr }}")
    lines.append(f"meta l4proto {proto} dnat to {ep.address}")
    return tuple(lines)


# Base chains: name -> (declaration or "", rules).
def base_chains(cfg: NftConfig) -> dict[str, tuple[str, tuple[str, ...]]]:
    mark = cfg.mark
    return {
        "nat-prerouting": ("type nat hook prerouting priority dstnat", ("jump services",)),
        "nat-output": ("type nat hook output priority -100", ("jump services",)),
        "nat-postrouting": ("type nat hook postrouting priority srcnat", ("jump masquerading",)),
        "filter-input": ("type filter hook input priority -110",
                         ("ct state new jump nodeport-endpoints-check",)),
        "filter-forward": ("type filter hook forward priority -110",
                           ("ct state new jump service-endpoints-check",
                            "ct state new jump nodeport-endpoints-check")),
        "filter-output": ("type filter hook output priority -110",
                          ("ct state new jump service-endpoints-check",
                           "ct state new jump nodeport-endpoints-check")),
        "services": ("", (f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}",
                          f"fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{SERVICE_NODEPORTS}")),
        "service-endpoints-check": ("", (f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}",)),
        "nodeport-endpoints-check": ("", (
            f"fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}",)),
        "mark-for-masquerade": ("", (f"meta mark set meta mark | {mark}",)),
        "masquerading": ("", (f"meta mark & {mark} == 0 return", f"meta mark set meta mark ^ {mark}",
                              "masquerade fully-random")),
        "reject-chain": ("", ("reject",)),
    }


def compute_pieces(cfg: NftConfig, snapshot: Snapshot, keys: Iterable[str] | None = None) -> dict[str, NftPiece]:
    keys = snapshot.services.keys() if keys is None else keys
    return {k: service_port_piece(cfg, snapshot.services[k], snapshot.endpoints.get(k, ()))
            for k in keys if k in snapshot.services}
