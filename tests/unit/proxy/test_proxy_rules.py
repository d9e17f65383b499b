"""The pure iptables rule generation: chain names, jumps, DNAT, spreading, affinity."""

from __future__ import annotations

import re

import pytest

from tinykube.testing.services import endpoint_slice, service
from tinykube.proxy.iptables.rules import (
    FILTER, NAT, RuleConfig, compute_rules, port_proto_hash, probability, sep_chain, svc_chain,
)
from tinykube.proxy.model import Snapshot, endpoints_for, merge_slices, service_ports

CFG = RuleConfig(cluster_cidr="10.244.0.0/16", node_name="node-1")


def snapshot(*pairs: tuple[dict, dict | None]) -> Snapshot:
    snap = Snapshot()
    for svc, slc in pairs:
        key = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
        merged = merge_slices(key, [slc] if slc else [])
        for port in service_ports(svc):
            snap.services[port.key] = port
            snap.endpoints[port.key] = endpoints_for(port, merged)
    return snap


def chain_of(ruleset, table: str, name: str) -> tuple[str, ...]:
    return ruleset.tables[table][name]


def test_chain_hash_is_upstreams_base32_of_sha256() -> None:
    # upstream's TestServicePortChainName-style: 16 base32 characters, depends on protocol
    h_tcp = port_proto_hash("ns1/svc1:p80", "TCP")
    assert re.fullmatch(r"[A-Z2-7]{16}", h_tcp)
    assert h_tcp == port_proto_hash("ns1/svc1:p80", "tcp")
    assert h_tcp != port_proto_hash("ns1/svc1:p80", "udp")
    assert h_tcp != port_proto_hash("ns1/svc1:p81", "tcp")


@pytest.mark.parametrize("port_name, protocol, chain", [
    # the chain names every kubeadm cluster shows in `iptables -t nat -L -n | grep KUBE`
    ("default/kubernetes:https", "TCP", "KUBE-SVC-NPX46M4PTMTKRN6Y"),
    ("kube-system/kube-dns:dns", "UDP", "KUBE-SVC-TCOU7JCQXEZGVUNU"),
    ("kube-system/kube-dns:dns-tcp", "TCP", "KUBE-SVC-ERIFXISQEP7F7OF4"),
    ("kube-system/kube-dns:metrics", "TCP", "KUBE-SVC-JD5MR3NA4I4DYORP"),
])
def test_chain_names_match_real_clusters(port_name: str, protocol: str, chain: str) -> None:
    assert "KUBE-SVC-" + port_proto_hash(port_name, protocol) == chain


def test_cluster_ip_service_jumps_and_spreads_over_endpoints() -> None:
    svc = service("web", "10.96.0.100")
    rules = compute_rules(CFG, snapshot((svc, endpoint_slice("web", ["10.244.1.5", "10.244.2.6"]))))
    port = service_ports(svc)[0]
    svc_name = svc_chain(CFG, port)
    services = chain_of(rules, NAT, "KUBE-SERVICES")
    assert services[0] == (
        f'-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp'
        f" -d 10.96.0.100 --dport 80 -j {svc_name}")
    assert services[-1].endswith("-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS")
    lines = chain_of(rules, NAT, svc_name)
    assert lines[0].endswith("! -s 10.244.0.0/16 -j KUBE-MARK-MASQ")
    assert "--probability 0.5000000000" in lines[1] and "10.244.1.5:8080" in lines[1]
    assert "statistic" not in lines[2] and "10.244.2.6:8080" in lines[2]
    sep = [line for line in lines[1].split() if line.startswith("KUBE-SEP-")][0]
    assert chain_of(rules, NAT, sep) == (
        f"-A {sep} -m comment --comment default/web:http -s 10.244.1.5 -j KUBE-MARK-MASQ",
        f"-A {sep} -m comment --comment default/web:http -p tcp -j DNAT --to-destination 10.244.1.5:8080",
    )
    assert chain_of(rules, FILTER, "KUBE-SERVICES") == ()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_probabilities_give_each_endpoint_an_equal_share(n: int) -> None:
    addresses = [f"10.244.0.{i + 1}" for i in range(n)]
    rules = compute_rules(CFG, snapshot((service("web", "10.96.0.100"), endpoint_slice("web", addresses))))
    svc_name = svc_chain(CFG, service_ports(service("web", "10.96.0.100"))[0])
    jumps = [line for line in chain_of(rules, NAT, svc_name) if "-j KUBE-SEP-" in line]
    assert len(jumps) == n
    remaining, shares = 1.0, []
    for line in jumps:
        match = re.search(r"--probability (\S+)", line)
        p = float(match.group(1)) if match else 1.0
        shares.append(remaining * p)
        remaining *= 1 - p
    assert shares == pytest.approx([1 / n] * n, abs=1e-9)
    assert probability(3) == "0.3333333333"


def test_no_endpoints_rejects_in_filter_table_and_has_no_nat_chain() -> None:
    svc = service("empty", "10.96.0.7")
    rules = compute_rules(CFG, snapshot((svc, None)))
    assert chain_of(rules, FILTER, "KUBE-SERVICES") == (
        '-A KUBE-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp'
        " -d 10.96.0.7 --dport 80 -j REJECT --reject-with icmp-port-unreachable",)
    assert svc_chain(CFG, service_ports(svc)[0]) not in rules.tables[NAT]
    assert len(chain_of(rules, NAT, "KUBE-SERVICES")) == 1  # only the nodeports jump


def test_unready_endpoints_are_not_used() -> None:
    svc = service("web", "10.96.0.100")
    slc = endpoint_slice("web", ["10.244.1.5", "10.244.2.6"], ready=[True, False])
    rules = compute_rules(CFG, snapshot((svc, slc)))
    text = "\n".join(line for chain in rules.tables[NAT].values() for line in chain)
    assert "10.244.1.5:8080" in text and "10.244.2.6" not in text


def test_node_port_goes_through_ext_chain_with_masquerade() -> None:
    svc = service("np", "10.96.0.50", type="NodePort",
                  ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}])
    rules = compute_rules(CFG, snapshot((svc, endpoint_slice("np", ["10.244.1.5"]))))
    port = service_ports(svc)[0]
    ext = svc_chain(CFG, port).replace("SVC-", "EXT-")
    assert chain_of(rules, NAT, "KUBE-NODEPORTS") == (
        f"-A KUBE-NODEPORTS -m comment --comment default/np:http -m tcp -p tcp --dport 30080 -j {ext}",)
    assert chain_of(rules, NAT, ext) == (
        f'-A {ext} -m comment --comment "masquerade traffic for default/np:http external destinations"'
        " -j KUBE-MARK-MASQ",
        f"-A {ext} -j {svc_chain(CFG, port)}",
    )


def test_node_port_without_endpoints_rejects_in_external_services() -> None:
    svc = service("np", "10.96.0.50", type="NodePort",
                  ports=[{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}])
    rules = compute_rules(CFG, snapshot((svc, None)))
    (line,) = chain_of(rules, FILTER, "KUBE-EXTERNAL-SERVICES")
    assert "--dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT" in line


def test_client_ip_affinity_uses_recent_module() -> None:
    svc = service("sticky", "10.96.0.9", sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    rules = compute_rules(CFG, snapshot((svc, endpoint_slice("sticky", ["10.244.1.5", "10.244.2.6"]))))
    port = service_ports(svc)[0]
    lines = chain_of(rules, NAT, svc_chain(CFG, port))
    eps = sorted(endpoints_for(port, merge_slices("default/sticky", [endpoint_slice("sticky", ["10.244.1.5", "10.244.2.6"])])))
    for line, ep in zip(lines[1:3], eps):
        sep = sep_chain(CFG, port, ep)
        assert f"-m recent --name {sep} --rcheck --seconds 600 --reap -j {sep}" in line
    sep = sep_chain(CFG, port, eps[0])
    assert f"-m recent --name {sep} --set -p tcp -j DNAT" in chain_of(rules, NAT, sep)[1]


def test_default_affinity_timeout_is_three_hours() -> None:
    svc = service("sticky", "10.96.0.9", sessionAffinity="ClientIP")
    assert service_ports(svc)[0].affinity_timeout == 10800


def test_udp_and_unnamed_ports() -> None:
    svc = service("dns", "10.96.0.10", ports=[{"port": 53, "protocol": "UDP"}])
    slc = endpoint_slice("dns", ["10.244.0.3"], ports=[{"port": 5353, "protocol": "UDP"}])
    rules = compute_rules(CFG, snapshot((svc, slc)))
    port = service_ports(svc)[0]
    assert port.key == "default/dns"
    assert f"-m udp -p udp -d 10.96.0.10 --dport 53 -j {svc_chain(CFG, port)}" in chain_of(rules, NAT, "KUBE-SERVICES")[0]


def test_headless_and_external_name_services_are_skipped() -> None:
    assert service_ports(service("h", "None")) == []
    assert service_ports(service("x", "", type="ExternalName", externalName="example.org")) == []


def test_chain_prefix_renames_every_chain() -> None:
    cfg = RuleConfig(chain_prefix="TKT1-")
    rules = compute_rules(cfg, snapshot((service("web", "10.96.0.100"), endpoint_slice("web", ["10.244.1.5"]))))
    names = set(rules.tables[NAT]) | set(rules.tables[FILTER])
    assert names and all(n.startswith("TKT1-") for n in names)
    text = "\n".join(line for t in rules.tables.values() for c in t.values() for line in c)
    assert "KUBE-" not in text


def test_overlong_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds 28"):
        compute_rules(RuleConfig(chain_prefix="WAYTOOLONG-"),
                      snapshot((service("web", "10.96.0.100"), endpoint_slice("web", ["10.244.1.5"]))))


def test_external_traffic_policy_local_uses_only_local_endpoints() -> None:
    svc = service("loc", "10.96.0.60", type="NodePort", externalTrafficPolicy="Local",
                  ports=[{"name": "http", "port": 80, "nodePort": 30081, "protocol": "TCP"}])
    slc = endpoint_slice("loc", ["10.244.1.5"], node_name="node-1")
    slc["endpoints"].append({"addresses": ["10.244.2.6"], "conditions": {"ready": True}, "nodeName": "node-2"})
    rules = compute_rules(CFG, snapshot((svc, slc)))
    port = service_ports(svc)[0]
    svl = svc_chain(CFG, port).replace("SVC-", "SVL-")
    svl_text = "\n".join(chain_of(rules, NAT, svl))
    assert "10.244.1.5:8080" in svl_text and "10.244.2.6" not in svl_text
    assert "10.244.2.6:8080" in "\n".join(chain_of(rules, NAT, svc_chain(CFG, port)))


def test_load_balancer_and_external_ips_jump_to_the_ext_chain() -> None:
    svc = service("lb", "10.96.0.70", type="LoadBalancer", externalIPs=["192.0.2.50"],
                  ports=[{"name": "http", "port": 80, "nodePort": 30090, "protocol": "TCP"}])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}}
    rules = compute_rules(CFG, snapshot((svc, endpoint_slice("lb", ["10.244.1.5"]))))
    ext = svc_chain(CFG, service_ports(svc)[0]).replace("SVC-", "EXT-")
    services = chain_of(rules, NAT, "KUBE-SERVICES")
    assert f'-A KUBE-SERVICES -m comment --comment "default/lb:http loadbalancer IP" -m tcp -p tcp -d 198.51.100.7 --dport 80 -j {ext}' in services
    assert f'-A KUBE-SERVICES -m comment --comment "default/lb:http external IP" -m tcp -p tcp -d 192.0.2.50 --dport 80 -j {ext}' in services
