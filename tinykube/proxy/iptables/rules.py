"""The desired iptables rule set, computed from service ports and endpoints without I/O.

The chain layout is upstream kube-proxy's (nat: KUBE-SERVICES, KUBE-SVC-*, KUBE-SVL-*,
KUBE-EXT-*, KUBE-SEP-*, KUBE-NODEPORTS, KUBE-MARK-MASQ, KUBE-POSTROUTING; filter:
KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-FORWARD). Everything one service port
contributes is computed by `service_port_rules` on its own, so a sync can recompute and
rewrite only the service ports that changed; `assemble` joins the pieces into the shared
top-level chains. `chain_prefix` replaces `KUBE-` so tests own a private set of chains.

Large-cluster mode is upstream's: when the cluster has more than
`LARGE_CLUSTER_ENDPOINTS_THRESHOLD` endpoints (counted over all service ports, ready or
not), the `-m comment` parts of the KUBE-SEP-* rules and of the jumps from KUBE-SVC-* /
KUBE-SVL-* to them are left out (about a quarter of the restore text); every other
comment stays. As upstream, the mode is decided at each sync and applies to the chains
that sync computes: unchanged chains keep their form until they are next rewritten.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import repeat
from typing import Iterable, Mapping

from tinykube.proxy.model import Endpoint, ServicePort, Snapshot, usable_endpoints

NAT, FILTER = "nat", "filter"
MAX_CHAIN_LEN = 28  # iptables' XT_EXTENSION_MAXNAMELEN - 1
LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000  # upstream's largeClusterEndpointsThreshold


@dataclass(frozen=True)
class MasqueradeConfig:
    """The settings iptables and nftables rules share (a subset of
    KubeProxyConfiguration, same names): what to masquerade, with which mark, and the node."""

    cluster_cidr: str = ""
    masquerade_all: bool = False
    masquerade_bit: int = 14
    node_name: str = ""

    @property
    def mark(self) -> str:
        return f"{1 << self.masquerade_bit:#x}"


@dataclass(frozen=True)
class RuleConfig(MasqueradeConfig):
    """The settings that shape the iptables rules."""

    chain_prefix: str = "KUBE-"

    def chain(self, suffix: str) -> str:
        if len(suffix) == 20 and len(self.chain_prefix) <= MAX_CHAIN_LEN - 20:
            return self.chain_prefix + suffix  # a hashed chain (SVC-, SEP-, ...): always fits
        name = self.chain_prefix + suffix
        if len(name) > MAX_CHAIN_LEN:
            raise ValueError(f"chain name {name!r} exceeds {MAX_CHAIN_LEN} characters")
        return name

    # Top-level chains, named as upstream with the prefix applied.
    @cached_property
    def services(self) -> str:
        return self.chain("SERVICES")

    @cached_property
    def external_services(self) -> str:
        return self.chain("EXTERNAL-SERVICES")

    @cached_property
    def nodeports(self) -> str:
        return self.chain("NODEPORTS")

    @cached_property
    def postrouting(self) -> str:
        return self.chain("POSTROUTING")

    @cached_property
    def mark_masq(self) -> str:
        return self.chain("MARK-MASQ")

    @cached_property
    def forward(self) -> str:
        return self.chain("FORWARD")

    @cached_property
    def canary(self) -> str:
        """An empty chain whose disappearance means someone flushed our tables."""
        return self.chain("PROXY-CANARY")


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_PAIRS = [a + b for a in _B32 for b in _B32]  # 10 bits -> two base32 characters


def _base32_16(data: bytes) -> str:
    """The first 16 characters of base32(data): its top 80 bits, 10 at a time."""
    v = int.from_bytes(data[:10], "big")
    t = _B32_PAIRS
    return (t[v >> 70] + t[(v >> 60) & 1023] + t[(v >> 50) & 1023] + t[(v >> 40) & 1023]
            + t[(v >> 30) & 1023] + t[(v >> 20) & 1023] + t[(v >> 10) & 1023] + t[v & 1023])


@lru_cache(maxsize=1 << 17)
def port_proto_hash(service_port_name: str, protocol: str) -> str:
    """Upstream's chain hash: base32(sha256(name + lowercase protocol))[:16]."""
    return _base32_16(hashlib.sha256((service_port_name + protocol.lower()).encode()).digest())


@lru_cache(maxsize=1 << 17)
def endpoint_hash(service_port_name: str, protocol: str, endpoint: str) -> str:
    """Upstream's KUBE-SEP hash: base32(sha256(name + protocol + "ip:port"))[:16]."""
    return _base32_16(hashlib.sha256((service_port_name + protocol.lower() + endpoint).encode()).digest())


def svc_chain(cfg: RuleConfig, port: ServicePort) -> str:
    return cfg.chain("SVC-" + port_proto_hash(port.key, port.protocol))


def svl_chain(cfg: RuleConfig, port: ServicePort) -> str:
    return cfg.chain("SVL-" + port_proto_hash(port.key, port.protocol))


def ext_chain(cfg: RuleConfig, port: ServicePort) -> str:
    return cfg.chain("EXT-" + port_proto_hash(port.key, port.protocol))


def sep_chain(cfg: RuleConfig, port: ServicePort, ep: Endpoint) -> str:
    return cfg.chain("SEP-" + endpoint_hash(port.key, port.protocol, ep.address))


def comment(text: str) -> str:
    """`-m comment --comment X`, quoted when X has spaces (as upstream writes it)."""
    return f'-m comment --comment "{text}"' if " " in text else f"-m comment --comment {text}"


_PROTO_MATCH: dict[str, str] = {}


def proto_match(port: ServicePort) -> str:
    match = _PROTO_MATCH.get(port.protocol)
    if match is None:
        proto = port.protocol.lower()
        match = _PROTO_MATCH[port.protocol] = f"-m {proto} -p {proto}"
    return match


def probability(n: int) -> str:
    """Upstream's `%0.10f` of 1/n: the i-th of n endpoints gets 1/(n-i)."""
    return f"{1.0 / n:0.10f}"


@dataclass(frozen=True)
class ServiceRules:
    """Everything one service port puts into the tables."""

    nat_chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    nat_services: tuple[str, ...] = ()
    nat_nodeports: tuple[str, ...] = ()
    filter_services: tuple[str, ...] = ()
    filter_external: tuple[str, ...] = ()


def endpoint_count(snapshot: Snapshot) -> int:
    """Endpoints (ready or not) over all service ports, as upstream counts them."""
    return sum(map(len, map(snapshot.endpoints.get, snapshot.services, repeat(()))))


def large_cluster_mode(snapshot: Snapshot) -> bool:
    """Upstream's largeClusterMode: more endpoints than the threshold over all service ports."""
    return endpoint_count(snapshot) > LARGE_CLUSTER_ENDPOINTS_THRESHOLD


def _endpoint_chain(cfg: RuleConfig, port: ServicePort, ep: Endpoint, chain: str, large: bool) -> tuple[str, ...]:
    """KUBE-SEP-*: hairpin masquerade, then DNAT (recording affinity when enabled).

    Upstream writes `-m tcp -p tcp` before the DNAT; without a port option `-m tcp` only
    adds an xt_tcp match (an nft_compat expression with iptables-nft) whose one effect is
    to refuse non-first fragments and truncated headers, which never reach the nat table
    (conntrack defragments first and leaves no conntrack entry on a broken header, and nat
    only sees packets with one). `-p tcp` alone is the same match and costs
    iptables-nft-restore ~20% less per DNAT rule (`iptables-save` then shows no `-m tcp`)."""
    note = "" if large else " " + comment(port.key)
    affinity = f" -m recent --name {chain} --set" if port.affinity_timeout else ""
    return (
        f"-A {chain}{note} -s {ep.ip} -j {cfg.mark_masq}",
        f"-A {chain}{note}{affinity} -p {port.protocol.lower()} -j DNAT --to-destination {ep.address}",
    )


_PROBABILITIES = [""] + [f" -m statistic --mode random --probability {probability(n)}" for n in range(1, 1001)]


def _statistic(n: int) -> str:
    """The random match of the endpoint that has n endpoints left (cached as upstream does)."""
    return _PROBABILITIES[n] if n < len(_PROBABILITIES) else f" -m statistic --mode random --probability {probability(n)}"


def _balance(
    port: ServicePort, chain: str, eps: tuple[Endpoint, ...], seps: Mapping[Endpoint, str], large: bool = False
) -> list[str]:
    """Jumps from a service chain to its endpoint chains (`seps`): affinity first, then random."""
    lines: list[str] = []
    key = port.key
    if port.affinity_timeout:
        for ep in eps:
            sep = seps[ep]
            note = "" if large else " " + comment(f"{key} -> {ep.address}")
            lines.append(
                f"-A {chain}{note} -m recent --name {sep}"
                f" --rcheck --seconds {port.affinity_timeout} --reap -j {sep}"
            )
    n = len(eps)
    for i, ep in enumerate(eps):
        stat = "" if i == n - 1 else _statistic(n - i)
        note = "" if large else " " + comment(f"{key} -> {ep.address}")
        lines.append(f"-A {chain}{note}{stat} -j {seps[ep]}")
    return lines


def _local(eps: Iterable[Endpoint], node_name: str) -> tuple[Endpoint, ...]:
    return tuple(e for e in eps if e.node_name == node_name)


def _dest(port: ServicePort, ip: str) -> str:
    return f"{proto_match(port)} -d {ip} --dport {port.port}"


def service_port_rules(
    cfg: RuleConfig, port: ServicePort, endpoints: Iterable[Endpoint], large_cluster: bool = False
) -> ServiceRules:
    """The rules of one service port given all its endpoints (ready or not); `large_cluster`
    leaves out the endpoint rules' comments (see the module docstring)."""
    usable = usable_endpoints(endpoints)
    local = _local(usable, cfg.node_name)
    cluster_eps = local if port.internal_traffic_local else usable
    external = bool(port.node_port or port.external_ips or port.load_balancer_ips)
    key, svc = port.key, svc_chain(cfg, port)
    dest = _dest(port, port.cluster_ip)

    chains: dict[str, tuple[str, ...]] = {}
    nat_services: list[str] = []
    nat_nodeports: list[str] = []
    filter_services: list[str] = []
    filter_external: list[str] = []

    cluster_comment = comment(f"{key} cluster IP")
    if cluster_eps:
        nat_services.append(f"-A {cfg.services} {cluster_comment} {dest} -j {svc}")
    else:
        target, why = ("DROP", "has no local endpoints") if port.internal_traffic_local and usable else (
            "REJECT --reject-with icmp-port-unreachable", "has no endpoints")
        filter_services.append(
            f"-A {cfg.services} {comment(f'{key} {why}')} {dest} -j {target}"
        )

    seps = {ep: sep_chain(cfg, port, ep) for ep in usable}
    if cluster_eps or (external and usable):
        svc_lines: list[str] = []
        if cfg.masquerade_all:
            svc_lines.append(f"-A {svc} {cluster_comment} {dest} -j {cfg.mark_masq}")
        elif cfg.cluster_cidr:
            svc_lines.append(
                f"-A {svc} {cluster_comment} {dest} ! -s {cfg.cluster_cidr} -j {cfg.mark_masq}"
            )
        svc_lines += _balance(port, svc, cluster_eps, seps, large_cluster)
        chains[svc] = tuple(svc_lines)
        for ep, sep in seps.items():
            chains[sep] = _endpoint_chain(cfg, port, ep, sep, large_cluster)

    if external:
        ext = ext_chain(cfg, port)
        ext_eps = local if port.external_traffic_local else usable
        addresses = [(ip, "external IP") for ip in port.external_ips]
        addresses += [(ip, "loadbalancer IP") for ip in port.load_balancer_ips]
        for ip, what in addresses:
            if ext_eps:
                nat_services.append(f"-A {cfg.services} {comment(f'{key} {what}')} {_dest(port, ip)} -j {ext}")
            else:
                filter_external.append(
                    f"-A {cfg.external_services} {comment(f'{key} has no endpoints')} {_dest(port, ip)}"
                    " -j REJECT --reject-with icmp-port-unreachable"
                )
        if port.node_port:
            nodeport = f"{proto_match(port)} --dport {port.node_port}"
            if ext_eps:
                nat_nodeports.append(f"-A {cfg.nodeports} {comment(key)} {nodeport} -j {ext}")
            else:
                target, why = ("DROP", "has no local endpoints") if port.external_traffic_local and usable else (
                    "REJECT --reject-with icmp-port-unreachable", "has no endpoints")
                filter_external.append(
                    f"-A {cfg.external_services} {comment(f'{key} {why}')} -m addrtype --dst-type LOCAL"
                    f" {nodeport} -j {target}"
                )
        if ext_eps:
            chains[ext] = _external_chain(cfg, port, ext, svc)
            if port.external_traffic_local:
                svl = svl_chain(cfg, port)
                chains[svl] = tuple(_balance(port, svl, local, seps, large_cluster))

    return ServiceRules(
        nat_chains=chains,
        nat_services=tuple(nat_services),
        nat_nodeports=tuple(nat_nodeports),
        filter_services=tuple(filter_services),
        filter_external=tuple(filter_external),
    )


def _external_chain(cfg: RuleConfig, port: ServicePort, ext: str, svc: str) -> tuple[str, ...]:
    """KUBE-EXT-*: masquerade and send to the cluster chain, or (Local policy) to KUBE-SVL."""
    key = port.key
    if not port.external_traffic_local:
        return (
            f"-A {ext} {comment(f'masquerade traffic for {key} external destinations')} -j {cfg.mark_masq}",
            f"-A {ext} -j {svc}",
        )
    lines = []
    if cfg.cluster_cidr:
        lines.append(f"-A {ext} {comment(f'pod traffic for {key} external destinations')} -s {cfg.cluster_cidr} -j {svc}")
    lines += [
        f"-A {ext} {comment(f'masquerade LOCAL traffic for {key} external destinations')}"
        f" -m addrtype --src-type LOCAL -j {cfg.mark_masq}",
        f"-A {ext} {comment(f'route LOCAL traffic for {key} external destinations')}"
        f" -m addrtype --src-type LOCAL -j {svc}",
        f"-A {ext} -j {svl_chain(cfg, port)}",
    ]
    return tuple(lines)


@dataclass
class RuleSet:
    """Desired chains per table: table -> chain -> complete list of `-A` lines."""

    tables: dict[str, dict[str, tuple[str, ...]]] = field(
        default_factory=lambda: {NAT: {}, FILTER: {}}
    )


def base_chains(cfg: RuleConfig) -> dict[str, dict[str, tuple[str, ...]]]:
    """The fixed chains: masquerade marking, SNAT in postrouting, forwarding accepts."""
    mark = cfg.mark
    return {
        NAT: {
            cfg.canary: (),
            cfg.mark_masq: (f"-A {cfg.mark_masq} -j MARK --or-mark {mark}",),
            cfg.postrouting: (
                f"-A {cfg.postrouting} -m mark ! --mark {mark}/{mark} -j RETURN",
                f"-A {cfg.postrouting} -j MARK --xor-mark {mark}",
                f"-A {cfg.postrouting} {comment('kubernetes service traffic requiring SNAT')}"
                " -j MASQUERADE --random-fully",
            ),
        },
        FILTER: {
            cfg.canary: (),
            cfg.forward: (
                f"-A {cfg.forward} -m conntrack --ctstate INVALID -j DROP",
                f"-A {cfg.forward} {comment('kubernetes forwarding rules')} -m mark --mark {mark}/{mark} -j ACCEPT",
                f"-A {cfg.forward} {comment('kubernetes forwarding conntrack rule')}"
                " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            ),
        },
    }


def top_level_chains(cfg: RuleConfig, pieces: Mapping[str, ServiceRules]) -> dict[str, dict[str, tuple[str, ...]]]:
    """The shared chains every sync rewrites, joined from all service ports in key order."""
    nat_services: list[str] = []
    nat_nodeports: list[str] = []
    filter_services: list[str] = []
    filter_external: list[str] = []
    for key in sorted(pieces):
        piece = pieces[key]
        nat_services += piece.nat_services
        nat_nodeports += piece.nat_nodeports
        filter_services += piece.filter_services
        filter_external += piece.filter_external
    # Localhost NodePorts need the route_localnet sysctl, which tinykube leaves alone, so
    # 127.0.0.0/8 is excluded as upstream does with localhostNodePorts off.
    nat_services.append(
        f"-A {cfg.services} {comment('kubernetes service nodeports; NOTE: this must be the last rule in this chain')}"
        f" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j {cfg.nodeports}"
    )
    return {
        NAT: {cfg.services: tuple(nat_services), cfg.nodeports: tuple(nat_nodeports)},
        FILTER: {cfg.services: tuple(filter_services), cfg.external_services: tuple(filter_external)},
    }


def assemble(cfg: RuleConfig, pieces: Mapping[str, ServiceRules]) -> RuleSet:
    """Join base chains, top-level chains and every service port's own chains."""
    ruleset = RuleSet()
    for source in (base_chains(cfg), top_level_chains(cfg, pieces)):
        for table, chains in source.items():
            ruleset.tables[table].update(chains)
    nat = ruleset.tables[NAT]
    for piece in pieces.values():
        nat.update(piece.nat_chains)
    return ruleset


def compute_pieces(cfg: RuleConfig, snapshot: Snapshot, keys: Iterable[str] | None = None,
                   large_cluster: bool | None = None) -> dict[str, ServiceRules]:
    """`service_port_rules` for the given service port keys (all when None); `large_cluster`
    None decides the mode from the snapshot."""
    keys = snapshot.services.keys() if keys is None else keys
    large = large_cluster_mode(snapshot) if large_cluster is None else large_cluster
    services, endpoints = snapshot.services, snapshot.endpoints
    return {
        k: service_port_rules(cfg, services[k], endpoints.get(k, ()), large)
        for k in keys
        if k in services
    }


def compute_rules(cfg: RuleConfig, snapshot: Snapshot) -> RuleSet:
    """The whole desired rule set for a snapshot: the pure core of iptables mode."""
    return assemble(cfg, compute_pieces(cfg, snapshot))


# Jumps from the built-in chains into ours: (table, built-in chain, our chain, match, comment).
JUMPS: tuple[tuple[str, str, str, str, str], ...] = (
    (FILTER, "INPUT", "EXTERNAL-SERVICES", "-m conntrack --ctstate NEW", "kubernetes externally-visible service portals"),
    (FILTER, "FORWARD", "EXTERNAL-SERVICES", "-m conntrack --ctstate NEW", "kubernetes externally-visible service portals"),
    (FILTER, "FORWARD", "SERVICES", "-m conntrack --ctstate NEW", "kubernetes service portals"),
    (FILTER, "OUTPUT", "SERVICES", "-m conntrack --ctstate NEW", "kubernetes service portals"),
    (FILTER, "FORWARD", "FORWARD", "", "kubernetes forwarding rules"),
    (NAT, "OUTPUT", "SERVICES", "", "kubernetes service portals"),
    (NAT, "PREROUTING", "SERVICES", "", "kubernetes service portals"),
    (NAT, "POSTROUTING", "POSTROUTING", "", "kubernetes postrouting rules"),
)


def jump_rules(cfg: RuleConfig) -> list[tuple[str, str, list[str]]]:
    """(table, built-in chain, iptables argument list) for each jump into our chains."""
    result = []
    for table, builtin, ours, match, text in JUMPS:
        args = match.split() + ["-m", "comment", "--comment", text, "-j", cfg.chain(ours)]
        result.append((table, builtin, args))
    return result
