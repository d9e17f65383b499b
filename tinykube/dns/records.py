"""Cluster DNS records, computed per query from a view of Services and EndpointSlices.

The names and answers are the Kubernetes DNS specification's, as CoreDNS's `kubernetes`
plugin serves them (with `pods insecure`):

- `<svc>.<ns>.svc.<zone>`: A with the ClusterIP; for a headless Service one A per ready
  endpoint address; an ExternalName Service answers a CNAME to its external name.
- `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV per named port (priority 0, weight 100/n).
- `<hostname>.<svc>.<ns>.svc.<zone>` for headless endpoints (the pod's hostname when the
  Service is its subdomain, else the dashed IP).
- `a-b-c-d.<ns>.pod.<zone>`: A a.b.c.d. PTR for ClusterIPs and headless endpoint IPs.
- Unknown names in the zone: NXDOMAIN with the zone's SOA in authority; known names
  without records of the asked type: NOERROR, no answer, SOA in authority.

This module does no I/O: `resolve` maps (question, view) to an `Answer`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from dnslib import CNAME, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, A

from tinykube.api import meta

Object = dict[str, Any]
DEFAULT_TTL = 5  # CoreDNS's default TTL for the kubernetes plugin
REVERSE_ZONE = "in-addr.arpa"


class ClusterView(Protocol):
    """Read access to the Services and EndpointSlices DNS answers from."""

    def service(self, namespace: str, name: str) -> Object | None: ...

    def slices(self, namespace: str, name: str) -> list[Object]: ...

    def services_by_ip(self, ip: str) -> list[Object]: ...

    def slices_by_address(self, ip: str) -> list[Object]: ...

    def has_namespace(self, namespace: str) -> bool: ...


@dataclass
class Answer:
    """A response's rcode and sections, before wire encoding."""

    rcode: int = RCODE.NOERROR
    answers: list[RR] = field(default_factory=list)
    authority: list[RR] = field(default_factory=list)
    additional: list[RR] = field(default_factory=list)


@dataclass(frozen=True)
class DNSEndpoint:
    """One endpoint address with the name DNS publishes for it."""

    ip: str
    hostname: str
    ready: bool


def _spec(obj: Object) -> Object:
    return obj.get("spec") or {}


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def is_headless(svc: Object) -> bool:
    return _spec(svc).get("clusterIP") == "None"


def cluster_ips(svc: Object) -> list[str]:
    spec = _spec(svc)
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if ip and ip != "None"]


def endpoints(svc: Object, slices: Iterable[Object]) -> list[DNSEndpoint]:
    """Endpoint addresses DNS publishes: ready ones, or all with publishNotReadyAddresses."""
    publish_all = bool(_spec(svc).get("publishNotReadyAddresses"))
    seen: dict[str, DNSEndpoint] = {}
    for slice_obj in slices:
        if slice_obj.get("addressType", "IPv4") != "IPv4":
            continue
        for ep in slice_obj.get("endpoints") or []:
            ready = (ep.get("conditions") or {}).get("ready")
            ready = True if ready is None else bool(ready)
            if not (ready or publish_all):
                continue
            for ip in ep.get("addresses") or []:
                seen.setdefault(ip, DNSEndpoint(ip, ep.get("hostname") or dashed(ip), ready))
    return sorted(seen.values(), key=lambda e: tuple(int(p) for p in e.ip.split(".")))


def slice_ports(slices: Iterable[Object]) -> list[tuple[str, str, int]]:
    """(name, protocol, port) of the endpoint ports, de-duplicated in order."""
    result: dict[tuple[str, str], int] = {}
    for slice_obj in slices:
        for port in slice_obj.get("ports") or []:
            if port.get("port") is not None:
                result.setdefault((port.get("name") or "", (port.get("protocol") or "TCP").upper()), int(port["port"]))
    return [(n, p, num) for (n, p), num in result.items()]


class Resolver:
    """Answers questions for one cluster domain from a `ClusterView`."""

    def __init__(self, view: ClusterView, domain: str = "cluster.local", ttl: int = DEFAULT_TTL) -> None:
        self.view = view
        self.domain = domain.strip(".").lower()
        self.ttl = ttl
        self._domain_labels = tuple(self.domain.split("."))

    # -- zone membership -------------------------------------------------------------
    def zone_of(self, qname: str) -> str | None:
        """The zone we are authoritative for that contains qname, or None."""
        name = qname.strip(".").lower()
        for zone in (self.domain, REVERSE_ZONE):
            if name == zone or name.endswith("." + zone):
                return zone
        return None

    def soa(self, zone: str) -> RR:
        return RR(
            zone + ".", QTYPE.SOA, ttl=self.ttl,
            rdata=SOA(f"ns.dns.{self.domain}.", f"hostmaster.{self.domain}.",
                      (1, 7200, 1800, 86400, self.ttl)),
        )

    # -- entry point -------------------------------------------------------------------
    def resolve(self, qname: str, qtype: int) -> Answer | None:
        """The answer for one question; None when the name is outside our zones."""
        zone = self.zone_of(qname)
        if zone is None:
            return None
        name = qname.strip(".").lower()
        if zone == REVERSE_ZONE:
            records = self._reverse(name)
        else:
            records = self._forward(name, qtype)
        answer = Answer()
        if records is None:
            answer.rcode = RCODE.NXDOMAIN
            answer.authority.append(self.soa(zone))
            return answer
        if qtype == QTYPE.SOA and name == zone:
            answer.answers.append(self.soa(zone))
            return answer
        if qtype == QTYPE.NS and name == zone:
            answer.answers.append(RR(zone + ".", QTYPE.NS, ttl=self.ttl, rdata=NS(f"ns.dns.{self.domain}.")))
            return answer
        cname = [r for r in records if r.rtype == QTYPE.CNAME]
        if cname:
            answer.answers = cname  # a CNAME answers every type, the client follows it
            return answer
        wanted = [r for r in records if qtype == QTYPE.ANY or r.rtype == qtype]
        if not wanted:
            answer.authority.append(self.soa(zone))  # NODATA
            return answer
        answer.answers = wanted
        if qtype == QTYPE.SRV:
            answer.additional = self._srv_additional(wanted)
        return answer

    # -- forward names -----------------------------------------------------------------
    def _rr(self, name: str, rtype: int, rdata: Any) -> RR:
        return RR(name + ".", rtype, ttl=self.ttl, rdata=rdata)

    def _forward(self, name: str, qtype: int = QTYPE.ANY) -> list[RR] | None:
        """Records at `name` (empty list: the name exists without records), None: NXDOMAIN.

        `qtype` only lets expensive record kinds be skipped; callers still filter by type.
        """
        labels = name.split(".")
        rel = labels[: len(labels) - len(self._domain_labels)]
        if not rel:
            return []
        kind = rel[-1]
        if kind == "svc":
            return self._service_names(name, rel[:-1], qtype)
        if kind == "pod":
            return self._pod_names(name, rel[:-1])
        return None

    def _pod_names(self, name: str, rel: list[str]) -> list[RR] | None:
        if not rel:
            return []
        if len(rel) == 1:
            return [] if self.view.has_namespace(rel[0]) else None
        if len(rel) != 2:
            return None
        try:
            ip = ipaddress.IPv4Address(rel[0].replace("-", "."))
        except ValueError:
            return None
        return [self._rr(name, QTYPE.A, A(str(ip)))]

    def _service_names(self, name: str, rel: list[str], qtype: int) -> list[RR] | None:
        if not rel:
            return []
        ns = rel[-1]
        if len(rel) == 1:
            return [] if self.view.has_namespace(ns) else None
        svc_name = rel[-2]
        svc = self.view.service(ns, svc_name)
        if svc is None:
            return None
        prefix = rel[:-2]
        if not prefix:
            return self._service_records(name, svc, qtype in (QTYPE.SRV, QTYPE.ANY))
        if len(prefix) == 2 and prefix[0].startswith("_") and prefix[1].startswith("_"):
            return self._srv_records(name, svc, prefix[0][1:], prefix[1][1:])
        if len(prefix) == 1 and is_headless(svc):
            return self._endpoint_records(name, svc, prefix[0])
        return None

    def _service_fqdn(self, svc: Object) -> str:
        return f"{meta.name(svc)}.{meta.namespace(svc)}.svc.{self.domain}"

    def _service_records(self, name: str, svc: Object, with_srv: bool = True) -> list[RR]:
        spec = _spec(svc)
        if spec.get("type") == "ExternalName":
            target = (spec.get("externalName") or "").strip(".")
            return [self._rr(name, QTYPE.CNAME, CNAME(target + "."))] if target else []
        records: list[RR] = []
        if is_headless(svc):
            eps = endpoints(svc, self._slices(svc))
            records += [self._rr(name, QTYPE.A, A(e.ip)) for e in eps]
            for pname, proto, port in slice_ports(self._slices(svc)) if with_srv else ():
                if pname:
                    records += self._headless_srv(name, svc, eps, port)
        else:
            records += [self._rr(name, QTYPE.A, A(ip)) for ip in cluster_ips(svc) if ":" not in ip]
            named = [p for p in spec.get("ports") or [] if p.get("name")] if with_srv else []
            for port in named:
                records.append(self._rr(name, QTYPE.SRV, SRV(0, _weight(len(named)), int(port["port"]), name + ".")))
        return records

    def _slices(self, svc: Object) -> list[Object]:
        return self.view.slices(meta.namespace(svc), meta.name(svc))

    def _srv_records(self, name: str, svc: Object, port_name: str, proto: str) -> list[RR] | None:
        proto = proto.upper()
        fqdn = self._service_fqdn(svc)
        if is_headless(svc):
            slices = self._slices(svc)
            ports = [p for p in slice_ports(slices) if p[0].lower() == port_name and p[1] == proto]
            if not ports:
                return None
            return self._headless_srv(name, svc, endpoints(svc, slices), ports[0][2])
        ports = [p for p in _spec(svc).get("ports") or []
                 if (p.get("name") or "").lower() == port_name and (p.get("protocol") or "TCP").upper() == proto]
        if not ports:
            return None
        return [self._rr(name, QTYPE.SRV, SRV(0, 100, int(ports[0]["port"]), fqdn + "."))]

    def _headless_srv(self, name: str, svc: Object, eps: list[DNSEndpoint], port: int) -> list[RR]:
        fqdn = self._service_fqdn(svc)
        weight = _weight(len(eps))
        return [self._rr(name, QTYPE.SRV, SRV(0, weight, port, f"{e.hostname}.{fqdn}.")) for e in eps]

    def _endpoint_records(self, name: str, svc: Object, host: str) -> list[RR] | None:
        ips = [e.ip for e in endpoints(svc, self._slices(svc)) if e.hostname.lower() == host]
        if not ips:
            return None
        return [self._rr(name, QTYPE.A, A(ip)) for ip in ips]

    def _srv_additional(self, srv_records: list[RR]) -> list[RR]:
        """A records for SRV targets inside the zone, as CoreDNS adds them."""
        extra: list[RR] = []
        seen: set[str] = set()
        for record in srv_records:
            target = str(record.rdata.target).strip(".").lower()
            if target in seen:
                continue
            seen.add(target)
            found = self._forward(target, QTYPE.A) or []
            extra += [r for r in found if r.rtype == QTYPE.A]
        return extra

    # -- reverse names -----------------------------------------------------------------
    def _reverse(self, name: str) -> list[RR] | None:
        labels = name.split(".")[:-2]
        if len(labels) != 4:
            return [] if len(labels) < 4 else None
        ip = ".".join(reversed(labels))
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            return None
        targets = [self._service_fqdn(s) for s in self.view.services_by_ip(ip)]
        for slice_obj in self.view.slices_by_address(ip):
            svc_name = meta.labels(slice_obj).get(meta.SERVICE_NAME_LABEL)
            svc = self.view.service(meta.namespace(slice_obj), svc_name or "")
            if svc is None or not is_headless(svc):
                continue
            for ep in endpoints(svc, [slice_obj]):
                if ep.ip == ip:
                    targets.append(f"{ep.hostname}.{self._service_fqdn(svc)}")
        if not targets:
            return None
        return [self._rr(name, QTYPE.PTR, PTR(t + ".")) for t in dict.fromkeys(targets)]


def _weight(n: int) -> int:
    return 100 // n if n else 100

