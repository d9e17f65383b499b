"""The tutorial's kube-proxy lab with the real kubectl: the kube-proxy ConfigMap shows the
mode, the kube-dns Service is there, and curl-able /metrics on the metrics port."""

from __future__ import annotations

import asyncio
import os
import subprocess

import aiohttp
import pytest

from tinykube.dns.config import DNSConfig
from tinykube.dns.server import DNSServer
from tinykube.proxy.config import ProxyConfig
from tinykube.proxy.server import Proxy
from tinykube.testing import cluster

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
pytestmark = [pytest.mark.kubectl,
              pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl 1.32 not installed")]


async def kubectl(kubeconfig: str, *args: str) -> str:
    result = await asyncio.to_thread(
        subprocess.run, [KUBECTL, f"--kubeconfig={kubeconfig}", *args],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_kube_proxy_lab() -> None:
    async with cluster(nodes=1) as c:
        proxy = Proxy(ProxyConfig(mode="userspace", client=c.client, node_name="node-0", publish_configmap=True,
                                  healthz_bind_address="127.0.0.1:0", metrics_bind_address="127.0.0.1:0",
                                  userspace_addresses=lambda port: [("127.0.0.1", 0)]))
        dns = DNSServer(DNSConfig(client=c.client, port=0, ensure_service=True,
                                  health_port=None, ready_port=None, metrics_port=None))
        await proxy.start()
        await dns.start()
        try:
            # 1. kubectl get configmap -n kube-system kube-proxy -o yaml | grep mode
            configmap = await kubectl(c.kubeconfig, "get", "configmap", "-n", "kube-system", "kube-proxy", "-o", "yaml")
            assert [line.strip() for line in configmap.splitlines() if "mode:" in line] == ["mode: userspace"]
            # the DNS Service the kubelet's clusterDNS points at
            services = await kubectl(c.kubeconfig, "get", "svc", "-n", "kube-system", "kube-dns")
            header, row = services.splitlines()[:2]
            assert header.split()[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
            assert row.split()[:5] == ["kube-dns", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP,9153/TCP"]
            # 4. curl localhost:10249/metrics
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{proxy.metrics_port}/metrics") as resp:
                    assert resp.status == 200
                    assert "kubeproxy_sync_proxy_rules_last_timestamp_seconds" in await resp.text()
        finally:
            await dns.stop()
            await proxy.stop()
