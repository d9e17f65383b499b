"""nftables mode: the pure state computation and partial transactions."""

from __future__ import annotations

import re

from tinykube.proxy.model import endpoints_for, merge_slices, service_ports
from tinykube.proxy.nftables.proxier import NftablesProxier
from tinykube.proxy.nftables.rules import (
    EXTERNAL_IPS, NO_ENDPOINT_NODEPORTS, NO_ENDPOINT_SERVICES, SERVICE_IPS, SERVICE_NODEPORTS, NftConfig,
    affinity_set, base_chains, external_chain, service_chain, service_port_piece,
)
from tinykube.testing.services import endpoint_slice, service

CFG = NftConfig(table="tk-unit", cluster_cidr="10.244.0.0/16", node_name="node-1")


def piece_for(svc: dict, addresses: list[str]):  # type: ignore[no-untyped-def]
    port = service_ports(svc)[0]
    key = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
    eps = endpoints_for(port, merge_slices(key, [endpoint_slice(svc["metadata"]["name"], addresses)]))
    return port, eps, service_port_piece(CFG, port, eps)


def test_chain_and_set_names_carry_hash_and_readable_name() -> None:
    port, eps, _ = piece_for(service("web", "10.96.0.100"), ["10.244.1.5"])
    assert re.fullmatch(r"service-[A-Z2-7]{8}-default/web/tcp/http", service_chain(port))
    assert re.fullmatch(r"affinity-[A-Z2-7]{8}-default/web/tcp/http__10\.244\.1\.5/8080", affinity_set(port, eps[0]))


def test_cluster_ip_is_a_verdict_map_element_and_endpoints_are_drawn_evenly() -> None:
    port, eps, piece = piece_for(service("web", "10.96.0.100"), ["10.244.1.5", "10.244.2.6", "10.244.3.7"])
    assert piece.elements[SERVICE_IPS] == {"10.96.0.100 . tcp . 80": f"goto {service_chain(port)}"}
    rules = piece.chains[service_chain(port)]
    draws = [re.fullmatch(r"(?:numgen random mod (\d+) == 0 )?meta l4proto tcp dnat to (\S+)", r) for r in rules]
    assert [m.group(1) for m in draws if m] == ["3", "2", None]  # 1/3, then 1/2 of the rest, then the rest
    assert [m.group(2) for m in draws if m] == [e.address for e in eps]
    assert list(piece.chains) == [service_chain(port)]  # no per-endpoint chains
    assert piece.hairpin == ("10.244.1.5", "10.244.2.6", "10.244.3.7")  # masqueraded if it reaches itself


def test_cluster_ip_traffic_from_outside_the_cluster_cidr_is_marked_by_one_rule() -> None:
    services = dict(base_chains(CFG))["services"][1]
    assert services[0] == ("ip saddr != 10.244.0.0/16 ip daddr . meta l4proto . th dport @service-ips "
                           "jump mark-for-masquerade")
    assert dict(base_chains(NftConfig(masquerade_all=True)))["services"][1][0] == (
        "ip daddr . meta l4proto . th dport @service-ips jump mark-for-masquerade")
    assert all("@service-ips jump" not in r for r in dict(base_chains(NftConfig()))["services"][1])


def test_external_ips_have_their_own_map_and_go_through_the_external_chain() -> None:
    svc = service("lb", "10.96.0.60", externalIPs=["192.0.2.10"])
    port, _, piece = piece_for(svc, ["10.244.1.5"])
    assert piece.elements[EXTERNAL_IPS] == {"192.0.2.10 . tcp . 80": f"goto {external_chain(port)}"}
    assert piece.elements[SERVICE_IPS] == {"10.96.0.60 . tcp . 80": f"goto {service_chain(port)}"}


def test_no_endpoints_reject_before_dnat() -> None:
    svc = service("np", "10.96.0.50", type="NodePort",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}])
    _, _, piece = piece_for(svc, [])
    assert piece.elements == {
        NO_ENDPOINT_SERVICES: {"10.96.0.50 . tcp . 80": "goto reject-chain"},
        NO_ENDPOINT_NODEPORTS: {"tcp . 30080": "goto reject-chain"},
    }
    assert piece.chains == {}


def test_node_port_goes_through_external_chain() -> None:
    svc = service("np", "10.96.0.50", type="NodePort",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}])
    port, _, piece = piece_for(svc, ["10.244.1.5"])
    ext = service_chain(port).replace("service-", "external-")
    assert piece.elements[SERVICE_NODEPORTS] == {"tcp . 30080": f"goto {ext}"}
    assert piece.chains[ext] == ("jump mark-for-masquerade", f"goto {service_chain(port)}")


def test_client_ip_affinity_uses_a_timeout_set_per_endpoint() -> None:
    svc = service("sticky", "10.96.0.9", sessionAffinity="ClientIP")
    port, eps, piece = piece_for(svc, ["10.244.1.5"])
    (name,) = piece.sets
    assert piece.sets[name] == 10800 and name == affinity_set(port, eps[0])
    assert piece.chains[service_chain(port)] == (
        f"ip saddr @{name} update @{name} {{ ip saddr }} meta l4proto tcp dnat to 10.244.1.5:8080",
        f"update @{name} {{ ip saddr }} meta l4proto tcp dnat to 10.244.1.5:8080")


async def test_partial_sync_changes_only_elements_and_chains_of_the_changed_service() -> None:
    proxier = NftablesProxier(CFG)
    for i in range(3):
        proxier.tracker.service_updated(service(f"s{i}", f"10.96.1.{i + 1}"))
        proxier.tracker.slice_updated(endpoint_slice(f"s{i}", [f"10.244.1.{i + 1}"]))
    full = await proxier.sync()
    assert full.full and full.text.startswith("add table ip tk-unit\ndelete table ip tk-unit\n")
    assert "add element ip tk-unit hairpin-endpoints { 10.244.1.1 . 10.244.1.1 , 10.244.1.2 . 10.244.1.2" in full.text
    proxier.tracker.slice_updated(endpoint_slice("s1", []))
    partial = await proxier.sync()
    assert not partial.full
    assert "delete element ip tk-unit service-ips { 10.96.1.2 . tcp . 80 }" in partial.text
    assert "add element ip tk-unit no-endpoint-services { 10.96.1.2 . tcp . 80 : goto reject-chain }" in partial.text
    assert "delete element ip tk-unit hairpin-endpoints { 10.244.1.2 . 10.244.1.2 }" in partial.text
    deleted = [line.split()[-1] for line in partial.text.splitlines() if line.startswith("delete chain")]
    assert len(deleted) == 1 and all("/s1/" in c for c in deleted)
    assert "s0" not in partial.text and "s2" not in partial.text
    assert (await proxier.sync()).text == ""
    # an endpoint comes back: one chain added, elements swapped back, nothing else
    proxier.tracker.slice_updated(endpoint_slice("s1", ["10.244.1.2", "10.244.1.9"]))
    partial = await proxier.sync()
    lines = partial.text.splitlines()
    assert lines[0].startswith("add chain ip tk-unit service-") and "/s1/" in lines[0]
    assert "add element ip tk-unit hairpin-endpoints { 10.244.1.2 . 10.244.1.2 , 10.244.1.9 . 10.244.1.9 }" in lines
    assert proxier.applied is not None and proxier.applied.elements[SERVICE_IPS]["10.96.1.2 . tcp . 80"].startswith("goto service-")


async def test_shared_endpoint_ip_stays_in_the_hairpin_set_while_any_port_uses_it() -> None:
    proxier = NftablesProxier(CFG)
    for name, ip in (("a", "10.96.2.1"), ("b", "10.96.2.2")):
        proxier.tracker.service_updated(service(name, ip))
        proxier.tracker.slice_updated(endpoint_slice(name, ["10.244.3.3"]))
    await proxier.sync()
    proxier.tracker.slice_updated(endpoint_slice("a", []))
    partial = await proxier.sync()
    assert "hairpin-endpoints" not in partial.text
    proxier.tracker.slice_updated(endpoint_slice("b", []))
    partial = await proxier.sync()
    assert "delete element ip tk-unit hairpin-endpoints { 10.244.3.3 . 10.244.3.3 }" in partial.text
