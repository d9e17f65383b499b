"""Cluster DNS record computation (pure, over a static view)."""

from __future__ import annotations

from dnslib import QTYPE, RCODE

from tinykube.dns.records import Resolver
from tinykube.dns.view import StaticView
from tinykube.testing.services import endpoint_slice, service


def resolver() -> Resolver:
    web = service("web-service", "10.96.0.100", ports=[
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "port": 9090, "protocol": "TCP"}])
    headless = service("db", "None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])
    db_slice = endpoint_slice("db", ["10.244.1.7", "10.244.2.8", "10.244.3.9"],
                              ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}],
                              ready=[True, True, False])
    db_slice["endpoints"][0]["hostname"] = "db-0"
    ext = service("search", "", type="ExternalName", externalName="search.example.com", ports=[])
    dns = service("kube-dns", "10.96.0.10", namespace="kube-system",
                  ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    view = StaticView([web, headless, ext, dns], [db_slice])
    return Resolver(view, "cluster.local")


def records(qname: str, qtype: int) -> tuple[int, list[tuple[str, int, str]]]:
    answer = resolver().resolve(qname, qtype)
    assert answer is not None
    return answer.rcode, [(str(r.rname), r.rtype, str(r.rdata)) for r in answer.answers]


def test_service_a_record_is_the_cluster_ip_with_ttl_5() -> None:
    answer = resolver().resolve("web-service.default.svc.cluster.local.", QTYPE.A)
    assert answer is not None and answer.rcode == RCODE.NOERROR
    (rr,) = answer.answers
    assert str(rr.rdata) == "10.96.0.100" and rr.ttl == 5


def test_names_are_case_insensitive() -> None:
    assert records("Web-Service.DEFAULT.svc.Cluster.Local.", QTYPE.A)[1][0][2] == "10.96.0.100"


def test_headless_service_answers_ready_endpoint_addresses() -> None:
    rcode, rrs = records("db.default.svc.cluster.local.", QTYPE.A)
    assert rcode == RCODE.NOERROR
    assert [r[2] for r in rrs] == ["10.244.1.7", "10.244.2.8"]


def test_srv_for_named_port_of_cluster_ip_service() -> None:
    answer = resolver().resolve("_http._tcp.web-service.default.svc.cluster.local.", QTYPE.SRV)
    assert answer is not None
    (rr,) = answer.answers
    assert (rr.rdata.priority, rr.rdata.weight, rr.rdata.port) == (0, 100, 80)
    assert str(rr.rdata.target) == "web-service.default.svc.cluster.local."
    assert [str(a.rdata) for a in answer.additional] == ["10.96.0.100"]


def test_srv_for_headless_service_targets_each_endpoint() -> None:
    answer = resolver().resolve("_pg._tcp.db.default.svc.cluster.local.", QTYPE.SRV)
    assert answer is not None
    targets = sorted(str(r.rdata.target) for r in answer.answers)
    assert targets == ["10-244-2-8.db.default.svc.cluster.local.", "db-0.db.default.svc.cluster.local."]
    assert {r.rdata.weight for r in answer.answers} == {50}
    assert {r.rdata.port for r in answer.answers} == {5432}


def test_endpoint_hostname_of_headless_service() -> None:
    assert records("db-0.db.default.svc.cluster.local.", QTYPE.A)[1][0][2] == "10.244.1.7"
    assert records("10-244-2-8.db.default.svc.cluster.local.", QTYPE.A)[1][0][2] == "10.244.2.8"


def test_unknown_service_is_nxdomain_with_soa() -> None:
    answer = resolver().resolve("nope.default.svc.cluster.local.", QTYPE.A)
    assert answer is not None and answer.rcode == RCODE.NXDOMAIN
    (soa,) = answer.authority
    assert soa.rtype == QTYPE.SOA and str(soa.rname) == "cluster.local."


def test_known_name_without_that_type_is_nodata() -> None:
    answer = resolver().resolve("web-service.default.svc.cluster.local.", QTYPE.AAAA)
    assert answer is not None and answer.rcode == RCODE.NOERROR and answer.answers == []
    assert answer.authority[0].rtype == QTYPE.SOA


def test_namespace_name_exists_only_with_services() -> None:
    assert records("default.svc.cluster.local.", QTYPE.A) == (RCODE.NOERROR, [])
    assert records("ghost.svc.cluster.local.", QTYPE.A)[0] == RCODE.NXDOMAIN


def test_external_name_is_a_cname() -> None:
    assert records("search.default.svc.cluster.local.", QTYPE.A)[1] == [
        ("search.default.svc.cluster.local.", QTYPE.CNAME, "search.example.com.")]


def test_pod_a_record_from_dashed_ip() -> None:
    assert records("10-244-1-5.default.pod.cluster.local.", QTYPE.A)[1][0][2] == "10.244.1.5"
    assert records("10-244-1.default.pod.cluster.local.", QTYPE.A)[0] == RCODE.NXDOMAIN


def test_ptr_for_cluster_ip_and_headless_endpoint() -> None:
    assert records("10.0.96.10.in-addr.arpa.", QTYPE.PTR)[1][0][2] == "kube-dns.kube-system.svc.cluster.local."
    assert records("7.1.244.10.in-addr.arpa.", QTYPE.PTR)[1][0][2] == "db-0.db.default.svc.cluster.local."
    assert records("9.9.9.10.in-addr.arpa.", QTYPE.PTR)[0] == RCODE.NXDOMAIN


def test_names_outside_the_zone_are_not_ours() -> None:
    assert resolver().resolve("example.com.", QTYPE.A) is None
    assert resolver().resolve("cluster.local.evil.com.", QTYPE.A) is None


def test_zone_apex_soa_and_ns() -> None:
    assert records("cluster.local.", QTYPE.SOA)[1][0][1] == QTYPE.SOA
    assert records("cluster.local.", QTYPE.NS)[1][0][2] == "ns.dns.cluster.local."


def test_service_query_for_srv_lists_named_ports() -> None:
    rcode, rrs = records("web-service.default.svc.cluster.local.", QTYPE.SRV)
    assert sorted(r[2] for r in rrs) == ["0 50 80 web-service.default.svc.cluster.local.",
                                         "0 50 9090 web-service.default.svc.cluster.local."]
