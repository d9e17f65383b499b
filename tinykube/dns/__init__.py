"""Cluster DNS, answering as CoreDNS's `kubernetes` plugin does (TTL 5).

- `records.Resolver`: the pure record computation over a `ClusterView` of Services and
  EndpointSlices (`view.CacheView` reads informer caches through indexes).
- `server.DNSServer(DNSConfig(...))`: UDP and TCP on one port, `/health` (8080), `/ready`
  (8181) and `/metrics` (9153, `coredns_dns_*`); `tinykube dns` is its CLI.
- `kubedns.ensure_kube_dns_service`: the kube-system/kube-dns Service (10.96.0.10).
- `client`: an asyncio query helper and the stub resolver's search-list rules.

Names outside the cluster domain (and `in-addr.arpa`) are answered REFUSED: nothing is
forwarded by default, so no query ever leaves the host. Forwarding is opt-in with
`DNSConfig.forward=["ip[:port]", ...]` (`tinykube dns --forward IP`); then such names are
relayed over UDP to each upstream in turn and SERVFAIL is returned when all fail.
"""

from tinykube.dns.config import DNSConfig
from tinykube.dns.server import DNSServer

__all__ = ["DNSConfig", "DNSServer"]
