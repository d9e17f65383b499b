"""Clearing stale UDP conntrack entries, as kube-proxy does after endpoint changes.

UDP has no connection teardown: without this, a client keeps sending to a removed endpoint
(or to the REJECT that answered while the service had no endpoints) until the conntrack
entry times out. Uses the `conntrack` tool when installed and skips quietly otherwise.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from tinykube.proxy.iptables.runner import run
from tinykube.proxy.model import Endpoint, ServicePort, Snapshot

log = logging.getLogger(__name__)


@dataclass
class StaleFlows:
    """UDP flows to delete: (cluster IP, endpoint IP) pairs and whole cluster IPs."""

    endpoints: set[tuple[str, str]] = field(default_factory=set)
    services: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.endpoints or self.services)


def stale_flows(
    port: ServicePort | None,
    before: tuple[Endpoint, ...],
    after: tuple[Endpoint, ...],
    old_port: ServicePort | None = None,
) -> StaleFlows:
    """UDP flows made stale by one service port going from `before` to `after` endpoints."""
    result = StaleFlows()
    ref = port or old_port
    if ref is None or ref.protocol != "UDP":
        return result
    gone = {e.ip for e in before} - {e.ip for e in after}
    result.endpoints.update((ref.cluster_ip, ip) for ip in gone)
    if port is not None and not before and after:
        result.services.add(port.cluster_ip)  # flows that hit the REJECT while empty
    return result


def flows_for(
    keys: Iterable[str],
    snapshot: Snapshot,
    old_services: Mapping[str, ServicePort],
    old_eps: Mapping[str, tuple[Endpoint, ...]],
) -> StaleFlows:
    """Stale UDP flows of the service ports `keys` after a sync changed `snapshot`."""
    flows = StaleFlows()
    for key in keys:
        found = stale_flows(snapshot.services.get(key), old_eps.get(key, ()),
                            snapshot.endpoints.get(key, ()), old_services.get(key))
        flows.endpoints |= found.endpoints
        flows.services |= found.services
    return flows


async def delete_flows(flows: StaleFlows, binary: str = "conntrack") -> int:
    """Run `conntrack -D` for each stale flow; returns the number of commands run."""
    if not flows or shutil.which(binary) is None:
        return 0
    count = 0
    for cluster_ip, ep_ip in sorted(flows.endpoints):
        await _delete([binary, "-D", "--orig-dst", cluster_ip, "--dst-nat", ep_ip, "-p", "udp"])
        count += 1
    for cluster_ip in sorted(flows.services):
        await _delete([binary, "-D", "--orig-dst", cluster_ip, "-p", "udp"])
        count += 1
    return count


async def _delete(argv: list[str]) -> None:
    result = await run(argv)
    # exit status 1 with "0 flow entries have been deleted" just means nothing matched
    if result.returncode != 0 and "0 flow entries" not in result.stderr:
        log.warning("%s failed: %s", " ".join(argv), result.stderr.strip())
