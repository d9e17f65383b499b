"""iptables mode without applying (dry run, any user): informers -> tracker -> rules, and
the sync metrics, against the API server."""

from __future__ import annotations

import aiohttp
import pytest

from tinykube.proxy.server import Proxy
from tinykube.testing.services import endpoint_slice, service


@pytest.fixture
async def dry_proxy(start_proxy) -> Proxy:  # type: ignore[no-untyped-def]
    return await start_proxy(mode="iptables", dry_run=True, cluster_cidr="10.244.0.0/16")


async def test_rules_follow_api_changes_incrementally(api, dry_proxy: Proxy) -> None:  # type: ignore[no-untyped-def]
    proxier = dry_proxy.proxier
    await api.resource("services").create(service("web", "10.96.30.30"), namespace="default")
    slices = api.resource("endpointslices", "discovery.k8s.io")
    created = await slices.create(endpoint_slice("web", ["10.244.1.5", "10.244.2.6"]), namespace="default")
    await dry_proxy.wait_until(lambda: len(dry_proxy.endpoints_of("default/web:http")) == 2)
    nat = proxier.applied["nat"]  # type: ignore[index]
    services = "\n".join(nat["KUBE-SERVICES"])
    assert '"default/web:http cluster IP" -m tcp -p tcp -d 10.96.30.30 --dport 80' in services
    assert sum("--to-destination 10.244." in r for rules in nat.values() for r in rules) == 2

    created["endpoints"][1]["conditions"]["ready"] = False
    await slices.update(created)
    await dry_proxy.wait_until(lambda: proxier.last_result is not None and "-X KUBE-SEP-" in proxier.last_result.text)
    last = proxier.last_result
    assert last is not None and not last.full and last.chains_written == 1  # the SVC chain only

    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{dry_proxy.metrics_port}/metrics") as resp:
            text = await resp.text()
    assert 'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}' in text
    assert "kubeproxy_sync_partial_proxy_rules_duration_seconds_count" in text
    assert "kubeproxy_sync_proxy_rules_endpoint_changes_total" in text
