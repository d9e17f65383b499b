"""The tutorial's Service flow in an in-process cluster: a Deployment's pods become Ready,
the endpointslice controller publishes them, kube-proxy programs them and cluster DNS
answers `web-service` with the allocated ClusterIP."""

from __future__ import annotations

from tinykube.dns.client import pod_search_list, resolve_search
from tinykube.dns.config import DNSConfig
from tinykube.dns.server import DNSServer
from tinykube.proxy.config import ProxyConfig
from tinykube.proxy.server import Proxy
from tinykube.testing import cluster

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 8080}]}]},
        },
    },
}
SERVICE = {  # the tutorial's manifest
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "web-service", "namespace": "default"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}


async def test_deployment_service_proxy_and_dns() -> None:
    async with cluster(nodes=1) as c:
        proxy = Proxy(ProxyConfig(mode="iptables", dry_run=True, client=c.client, node_name="node-0",
                                  min_sync_period=0, healthz_bind_address="", metrics_bind_address=""))
        dns = DNSServer(DNSConfig(client=c.client, port=0, health_port=None, ready_port=None, metrics_port=None))
        await proxy.start()
        await dns.start()
        try:
            await c.apply(DEPLOYMENT)
            svc = await c.apply(SERVICE)
            cluster_ip = svc["spec"]["clusterIP"]
            await proxy.wait_until(lambda: len(proxy.endpoints_of("default/web-service")) == 2, timeout=30)
            assert all(ep.endswith(":8080") for ep in proxy.endpoints_of("default/web-service"))
            nat = proxy.proxier.applied["nat"]  # type: ignore[index]
            jump = [r for r in nat["KUBE-SERVICES"] if f"-d {cluster_ip} --dport 80" in r]
            assert len(jump) == 1 and '"default/web-service cluster IP"' in jump[0]

            while True:  # the DNS server's informer may still be one event behind the proxy's
                seen = dns.generation
                fqdn, ips = await resolve_search("127.0.0.1", dns.port, "web-service", pod_search_list("default"))
                if ips or not await dns.changed(seen, timeout=10):
                    break
            assert (fqdn, ips) == ("web-service.default.svc.cluster.local.", [cluster_ip])
        finally:
            await dns.stop()
            await proxy.stop()
