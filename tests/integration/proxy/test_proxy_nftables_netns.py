"""nftables mode against the real `nft`, in a private network namespace: the streamed full
sync and every kind of partial transaction must be accepted and leave exactly the state
the proxier thinks it wrote."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess

import pytest

from tinykube.proxy.benchmark import populate
from tinykube.proxy.nftables.proxier import Nft, NftablesProxier, NftError
from tinykube.proxy.nftables.rules import HAIRPIN, MAPS, NftConfig, base_chains
from tinykube.testing.services import endpoint_slice, service

pytestmark = pytest.mark.root


def test_streamed_full_and_partial_syncs_land_in_a_private_netns() -> None:
    if shutil.which("nft") is None or shutil.which("ip") is None:
        pytest.skip("nft not installed")
    netns = f"tkx-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    cfg = NftConfig(table="tk-netns", cluster_cidr="10.128.0.0/10", node_name="node-1")

    def kernel() -> tuple[dict[str, int], dict[str, int]]:
        """Rules per chain and elements per map/set, as nft lists them."""
        out = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "table", "ip", cfg.table],
                             capture_output=True, text=True, check=True).stdout
        chains: dict[str, int] = {}
        elements: dict[str, int] = {}
        for item in json.loads(out)["nftables"]:
            if "chain" in item:
                chains.setdefault(item["chain"]["name"], 0)
            elif "rule" in item:
                chains[item["rule"]["chain"]] = chains.get(item["rule"]["chain"], 0) + 1
            elif "map" in item or "set" in item:
                obj = item.get("map") or item["set"]
                elements[obj["name"]] = len(obj.get("elem", ()))
        return chains, elements

    def expected(p: NftablesProxier) -> tuple[dict[str, int], dict[str, int]]:
        assert p.applied is not None
        chains = {n: len(r) for n, (_, r) in base_chains(cfg).items()}
        chains.update({n: len(r) for n, r in p.applied.chains.items()})
        elements = {m: len(e) for m, e in p.applied.elements.items()}
        elements[HAIRPIN] = len(p.applied.hairpin)
        elements.update(dict.fromkeys(p.applied.sets, 0))
        return chains, elements

    async def scenario() -> None:
        p = NftablesProxier(cfg, Nft(netns), clear_conntrack=False)
        populate(p, 900, 2)  # several streamed chunks
        t = p.tracker
        t.service_updated(service("np", "10.96.200.1", namespace="bench", type="NodePort",
                                  externalTrafficPolicy="Local", externalIPs=["192.0.2.7"],
                                  ports=[{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080,
                                          "protocol": "TCP"}]))
        t.slice_updated(endpoint_slice("np", ["10.200.1.1", "10.200.1.2"], namespace="bench", node_name="node-1"))
        t.service_updated(service("sticky", "10.96.200.2", namespace="bench", sessionAffinity="ClientIP"))
        t.slice_updated(endpoint_slice("sticky", ["10.200.2.1", "10.200.2.2"], namespace="bench"))
        t.service_updated(service("empty", "10.96.200.3", namespace="bench", type="NodePort",
                                  ports=[{"name": "http", "port": 80, "nodePort": 30081, "protocol": "TCP"}]))
        full = await p.sync()
        assert full.full and full.text.count(f"table ip {cfg.table} {{") > 2
        assert kernel() == expected(p)
        # partial syncs: endpoints gone, changed, back; affinity endpoints change; a service deleted
        t.slice_updated(endpoint_slice("svc-3", [], namespace="bench"))
        t.slice_updated(endpoint_slice("sticky", ["10.200.2.1", "10.200.2.3", "10.200.2.4"], namespace="bench"))
        t.slice_updated(endpoint_slice("np", ["10.200.1.1"], namespace="bench", node_name="node-1"))
        t.service_updated(None, key="bench/svc-4")
        inc = await p.sync()
        assert not inc.full and inc.chains_deleted >= 2
        assert kernel() == expected(p)
        t.slice_updated(endpoint_slice("svc-3", ["10.201.0.1", "10.201.0.2"], namespace="bench"))
        t.slice_updated(endpoint_slice("sticky", [], namespace="bench"))
        t.slice_updated(endpoint_slice("empty", ["10.200.3.1"], namespace="bench"))
        inc = await p.sync()
        assert not inc.full
        assert kernel() == expected(p)
        assert (await p.sync()).text == ""
        # a restart over the old table: one transaction replaces everything
        q = NftablesProxier(cfg, Nft(netns), clear_conntrack=False)
        populate(q, 300, 3)
        await q.sync()
        assert kernel() == expected(q)
        assert set(MAPS) <= set(kernel()[1])
        # a transaction nft rejects raises, applies nothing, and makes the next sync full
        q.cfg = NftConfig(table="tk-netns", cluster_cidr="not-a-cidr")
        q.applied = None
        q.tracker.slice_updated(endpoint_slice("svc-1", ["10.202.0.1"], namespace="bench"))
        with pytest.raises(NftError):
            await q.sync()
        assert q.applied is None
        q.cfg = cfg
        assert (await q.sync()).full and q.applied is not None
        assert len(q.applied.chains) == 300 and len(q.applied.hairpin) == 900 - 3 + 1  # svc-1 now has one endpoint
        assert kernel() == expected(q)
        await q.cleanup()
        assert subprocess.run(["ip", "netns", "exec", netns, "nft", "list", "table", "ip", cfg.table],
                              capture_output=True).returncode != 0

    try:
        asyncio.run(scenario())
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def test_hairpin_traffic_is_masqueraded_in_a_private_netns() -> None:
    """A pod that reaches itself through its ClusterIP gets its answer (the source is
    masqueraded by the hairpin-endpoints rule); another pod's traffic keeps its source."""
    if shutil.which("nft") is None or shutil.which("ip") is None:
        pytest.skip("nft not installed")
    token = secrets.token_hex(3)
    node, pods = f"tkx-{token}", [f"tkx-{token}-p{i}" for i in range(2)]
    servers: list[subprocess.Popen[bytes]] = []

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def get(pod: str, url: str) -> str:
        code = ("import urllib.request,sys; "
                "print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())")
        out = subprocess.run(["ip", "netns", "exec", pod, "python3", "-c", code, url],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip() if out.returncode == 0 else f"failed: {out.stderr.strip()[-200:]}"

    server = ("import http.server,sys\n"
              "class H(http.server.BaseHTTPRequestHandler):\n"
              "    def do_GET(self):\n"
              "        body = self.client_address[0].encode()\n"
              "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
              "        self.wfile.write(body)\n"
              "    def log_message(self, *a): pass\n"
              "http.server.HTTPServer((sys.argv[1], 8080), H).serve_forever()\n")
    try:
        ip("netns", "add", node)
        ip("-n", node, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        for i, pod in enumerate(pods):
            addr = f"10.77.{i}.2"
            ip("netns", "add", pod)
            ip("link", "add", f"tkh{token}{i}", "netns", node, "type", "veth", "peer", "name", "eth0", "netns", pod)
            ip("-n", node, "addr", "add", f"10.77.{i}.1/24", "dev", f"tkh{token}{i}")
            ip("-n", node, "link", "set", f"tkh{token}{i}", "up")
            ip("-n", pod, "addr", "add", f"{addr}/24", "dev", "eth0")
            ip("-n", pod, "link", "set", "eth0", "up")
            ip("-n", pod, "link", "set", "lo", "up")
            ip("-n", pod, "route", "add", "default", "via", f"10.77.{i}.1")
            servers.append(subprocess.Popen(["ip", "netns", "exec", pod, "python3", "-c", server, addr]))
        cfg = NftConfig(table="tk-hairpin", cluster_cidr="10.77.0.0/16")
        proxier = NftablesProxier(cfg, Nft(node), clear_conntrack=False)
        proxier.tracker.service_updated(service("web", "10.96.77.1"))
        proxier.tracker.slice_updated(endpoint_slice("web", ["10.77.0.2"]))
        asyncio.run(proxier.sync())
        for _ in range(50):  # the servers start
            if get(pods[1], "http://10.77.0.2:8080/") == "10.77.1.2":
                break
        assert get(pods[1], "http://10.96.77.1/") == "10.77.1.2"  # source kept
        assert get(pods[0], "http://10.96.77.1/") == "10.77.0.1"  # hairpin: masqueraded
    finally:
        for s in servers:
            s.kill()
            s.wait()
        for ns in (*pods, node):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
