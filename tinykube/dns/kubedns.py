"""The `kube-dns` Service in kube-system, as kubeadm creates it for CoreDNS."""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import ApiError

NAMESPACE = "kube-system"
NAME = "kube-dns"
DEFAULT_CLUSTER_IP = "10.96.0.10"


def kube_dns_service(cluster_ip: str = DEFAULT_CLUSTER_IP, dns_port: int = 53,
                     metrics_port: int = 9153) -> dict[str, Any]:
    """The Service object: ports dns 53/UDP, dns-tcp 53/TCP, metrics 9153/TCP."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "selector": {"k8s-app": "kube-dns"},
            "clusterIP": cluster_ip,
            "ports": [
                # targetPort is where this server listens (53 unless told otherwise), so
                # kube-proxy forwards the Service port to it.
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": dns_port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": dns_port},
                {"name": "metrics", "port": 9153, "protocol": "TCP",
                 "targetPort": metrics_port},
            ],
        },
    }


async def ensure_kube_dns_service(client: Any, cluster_ip: str = DEFAULT_CLUSTER_IP,
                                  dns_port: int = 53, metrics_port: int = 9153
                                  ) -> dict[str, Any]:
    """Create the kube-dns Service unless it exists; returns the stored object."""
    services = client.resource("services")
    try:
        return await services.get(NAME, namespace=NAMESPACE)
    except ApiError as exc:
        if exc.code != 404:
            raise
    try:
        return await services.create(kube_dns_service(cluster_ip, dns_port, metrics_port),
                                     namespace=NAMESPACE)
    except ApiError as exc:
        if exc.code != 409:
            raise
        return await services.get(NAME, namespace=NAMESPACE)
