"""iptables and nftables modes for real: pods in network namespaces on a test bridge,
Services and EndpointSlices through the API server, traffic from the host to ClusterIP and
NodePort. Chains carry a per-test prefix (nftables: a per-test table) and are removed at
teardown (asserted)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import subprocess
from collections import Counter
from typing import AsyncIterator

import aiohttp
import pytest
from click.testing import CliRunner

from tinykube.cli.proxy import proxy as proxy_command
from tinykube.proxy.config import ProxyConfig
from tinykube.testing.services import endpoint_slice, service
from tinykube.proxy.iptables.proxier import IptablesProxier, cleanup
from tinykube.proxy.iptables.rules import RuleConfig
from tinykube.proxy.iptables.runner import Iptables
from tinykube.proxy.server import Proxy
from tinykube.testing.podnet import PodNetwork, network_available

pytestmark = pytest.mark.root
KEY = "default/web:http"


def our_chains(prefix: str) -> list[str]:
    out = []
    for table in ("nat", "filter"):
        save = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=True).stdout
        out += [line for line in save.splitlines() if prefix in line]
    return out


def nft_table(table: str) -> str:
    """`nft list table ip <table>`, or "" when the table does not exist."""
    result = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def installed(p: Proxy) -> str:
    """What the proxy has in the kernel, as text."""
    if p.config.mode == "nftables":
        return nft_table(p.config.nftables_table)
    return "\n".join(our_chains(p.config.chain_prefix))


def random_cluster_ip() -> str:
    return f"10.96.{secrets.randbelow(200) + 20}.{secrets.randbelow(250) + 2}"


@pytest.fixture(params=["iptables", "nftables"])
async def iptables_proxy(request, api, pod_network: PodNetwork) -> AsyncIterator[Proxy]:  # type: ignore[no-untyped-def]
    if request.param == "nftables" and shutil.which("nft") is None:
        pytest.skip("nft not installed")
    config = ProxyConfig(
        mode=request.param, client=api, node_name="node-1", cluster_cidr=pod_network.subnet,
        chain_prefix=f"T{pod_network.token}-", nftables_table=f"tk-{pod_network.token}",
        masquerade_bit=9, min_sync_period=0,
        healthz_bind_address="127.0.0.1:0", metrics_bind_address="127.0.0.1:0")
    p = Proxy(config)
    try:
        await p.start()
        yield p
    finally:
        await p.stop()
        await p.cleanup()
        assert installed(p) == ""


async def hits(url: str, n: int) -> Counter[str]:
    """n GETs, each on a new connection (so each is load-balanced anew)."""
    counts: Counter[str] = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        for _ in range(n):
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                counts[await resp.text()] += 1
    return counts


async def test_cluster_ip_node_port_endpoint_removal_and_reject(
        api, pod_network: PodNetwork, iptables_proxy: Proxy) -> None:  # type: ignore[no-untyped-def]
    a, b = pod_network.add_pod(), pod_network.add_pod()
    cluster_ip = random_cluster_ip()
    pod_network.route_to_bridge(f"{cluster_ip}/32")
    node_port = 30000 + secrets.randbelow(2700)
    await api.resource("services").create(service(
        "web", cluster_ip, type="NodePort",
        ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": node_port, "protocol": "TCP"}]),
        namespace="default")
    slices = api.resource("endpointslices", "discovery.k8s.io")
    created = await slices.create(endpoint_slice("web", [a.ip, b.ip]), namespace="default")
    await iptables_proxy.wait_until(lambda: len(iptables_proxy.endpoints_of(KEY)) == 2)

    spread = await hits(f"http://{cluster_ip}/", 30)
    assert set(spread) == {a.name, b.name}, spread
    via_node_port = await hits(f"http://{pod_network.gateway}:{node_port}/", 10)
    assert set(via_node_port) <= {a.name, b.name} and sum(via_node_port.values()) == 10

    created["endpoints"] = created["endpoints"][:1]
    created = await slices.update(created)
    await iptables_proxy.wait_until(lambda: iptables_proxy.endpoints_of(KEY) == [f"{a.ip}:8080"])
    assert await hits(f"http://{cluster_ip}/", 10) == Counter({a.name: 10})

    created["endpoints"] = []
    await slices.update(created)
    await iptables_proxy.wait_until(lambda: iptables_proxy.endpoints_of(KEY) == [])
    with pytest.raises(ConnectionRefusedError):
        _, writer = await asyncio.wait_for(asyncio.open_connection(cluster_ip, 80), 5)
        writer.close()

    rules = installed(iptables_proxy)
    if iptables_proxy.config.mode == "iptables":
        assert '"default/web:http has no endpoints"' in rules and "icmp-port-unreachable" in rules
    else:
        assert f"{cluster_ip} . tcp . 80 : goto reject-chain" in rules


async def test_client_ip_session_affinity_sticks_to_one_pod(
        api, pod_network: PodNetwork, iptables_proxy: Proxy) -> None:  # type: ignore[no-untyped-def]
    a, b = pod_network.add_pod(), pod_network.add_pod()
    cluster_ip = random_cluster_ip()
    pod_network.route_to_bridge(f"{cluster_ip}/32")
    await api.resource("services").create(
        service("web", cluster_ip, sessionAffinity="ClientIP"), namespace="default")
    await api.resource("endpointslices", "discovery.k8s.io").create(
        endpoint_slice("web", [a.ip, b.ip]), namespace="default")
    await iptables_proxy.wait_until(lambda: len(iptables_proxy.endpoints_of(KEY)) == 2)
    counts = await hits(f"http://{cluster_ip}/", 20)
    assert len(counts) == 1 and sum(counts.values()) == 20, counts


async def test_udp_flow_moves_when_its_endpoint_is_removed(
        api, pod_network: PodNetwork, iptables_proxy: Proxy) -> None:  # type: ignore[no-untyped-def]
    """The stale conntrack entry is deleted: the same client socket reaches the other pod."""
    if shutil.which("conntrack") is None:
        pytest.skip("conntrack not installed")
    pods = {p.name: p for p in (pod_network.add_pod(udp_port=5353), pod_network.add_pod(udp_port=5353))}
    cluster_ip = random_cluster_ip()
    pod_network.route_to_bridge(f"{cluster_ip}/32")
    await api.resource("services").create(service(
        "dns", cluster_ip, ports=[{"name": "dns", "port": 53, "targetPort": 5353, "protocol": "UDP"}]),
        namespace="default")
    udp = [{"name": "dns", "port": 5353, "protocol": "UDP"}]
    slices = api.resource("endpointslices", "discovery.k8s.io")
    created = await slices.create(endpoint_slice("dns", [p.ip for p in pods.values()], ports=udp),
                                  namespace="default")
    key = "default/dns:dns"
    await iptables_proxy.wait_until(lambda: len(iptables_proxy.endpoints_of(key)) == 2)
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (cluster_ip, 53))

        async def ask() -> str:
            await loop.sock_sendall(sock, b"who")
            return (await asyncio.wait_for(loop.sock_recv(sock, 100), 5)).decode()

        first = await ask()
        assert await ask() == first  # one conntrack flow, one pod
        other = next(p for name, p in pods.items() if name != first)
        created["endpoints"] = [e for e in created["endpoints"] if e["addresses"] == [other.ip]]
        await slices.update(created)
        await iptables_proxy.wait_until(lambda: iptables_proxy.endpoints_of(key) == [f"{other.ip}:5353"])
        assert await ask() == other.name


def test_cleanup_command_removes_every_chain_and_jump() -> None:
    reason = network_available()
    if reason:
        pytest.skip(reason)
    prefix = f"C{secrets.token_hex(2)}-"
    cfg = RuleConfig(chain_prefix=prefix, masquerade_bit=9)
    proxier = IptablesProxier(cfg, Iptables(), clear_conntrack=False)
    # a service with no route and no traffic: only rules are installed
    proxier.tracker.service_updated(service("web", "10.96.250.250"))
    proxier.tracker.slice_updated(endpoint_slice("web", ["10.213.0.2"]))
    try:
        asyncio.run(proxier.sync())
        assert len([c for c in our_chains(prefix) if c.startswith(":")]) >= 9
        result = CliRunner().invoke(proxy_command, ["--cleanup", "--chain-prefix", prefix])
        assert result.exit_code == 0, result.output
        assert our_chains(prefix) == []
    finally:
        asyncio.run(cleanup(cfg, Iptables()))


@pytest.mark.parametrize("binary", ["iptables", "iptables-legacy"])
def test_staged_full_sync_restores_into_a_private_netns(binary: str) -> None:
    """A large full sync (streamed, one COMMIT per block with nf_tables) lands complete; a
    restart that sees fewer services deletes the stale chains; cleanup removes all."""
    if not Iptables.available(binary) or shutil.which("ip") is None:
        pytest.skip(f"{binary} not installed")
    from tinykube.proxy.benchmark import populate
    from tinykube.proxy.iptables.rules import compute_rules

    netns = f"tkx-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)

    def nat_chains() -> dict[str, int]:
        save = subprocess.run(["ip", "netns", "exec", netns, f"{binary}-save", "-t", "nat"],
                              capture_output=True, text=True, check=True).stdout
        counts: dict[str, int] = {}
        for line in save.splitlines():
            if line.startswith(":KUBE-"):
                counts.setdefault(line[1:].split()[0], 0)
            elif line.startswith("-A KUBE-"):
                name = line.split()[1]
                counts[name] = counts.get(name, 0) + 1
        return counts

    async def scenario() -> None:
        cfg = RuleConfig(cluster_cidr="10.128.0.0/10")
        first = IptablesProxier(cfg, Iptables(binary, netns=netns), clear_conntrack=False)
        populate(first, 600, 2)
        result = await first.sync()
        assert result.full and result.large_cluster
        assert result.commits > 3 if binary == "iptables" else result.commits == 2
        want = compute_rules(cfg, first.snapshot).tables["nat"]
        assert nat_chains() == {c: len(r) for c, r in want.items()}
        first.tracker.slice_updated(endpoint_slice("svc-7", ["10.200.0.1", "10.200.0.2", "10.200.0.3"],
                                                   namespace="bench"))
        inc = await first.sync()
        assert not inc.full and inc.commits == 1
        second = IptablesProxier(cfg, Iptables(binary, netns=netns), clear_conntrack=False)
        populate(second, 400, 2)
        result = await second.sync()
        assert result.chains_deleted >= 600
        want = compute_rules(cfg, second.snapshot).tables["nat"]
        assert nat_chains() == {c: len(r) for c, r in want.items()}
        await cleanup(cfg, Iptables(binary, netns=netns))
        assert nat_chains() == {}

    try:
        asyncio.run(scenario())
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
