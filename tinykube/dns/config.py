"""`DNSConfig`: where cluster DNS listens and what it answers for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinykube.dns.records import DEFAULT_TTL


@dataclass
class DNSConfig:
    """Settings of one DNS server; ports 0 pick free ones.

    `forward` lists upstream resolvers (`ip[:port]`) for names outside the cluster domain.
    It is empty by default: such names are answered REFUSED and nothing leaves the host.
    """

    client: Any = None  # a tinykube.client.rest.Client; wins over kubeconfig
    kubeconfig: str | None = None
    bind_address: str = "127.0.0.1"
    port: int = 53
    cluster_domain: str = "cluster.local"
    ttl: int = DEFAULT_TTL
    forward: list[str] = field(default_factory=list)
    forward_timeout: float = 2.0
    health_port: int | None = 8080  # None: no /health server
    ready_port: int | None = 8181
    metrics_port: int | None = 9153
    http_bind_address: str = "127.0.0.1"
    ensure_service: bool = False  # create kube-system/kube-dns (for `tinykube up`)
    service_ip: str = "10.96.0.10"
