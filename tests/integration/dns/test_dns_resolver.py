"""A pod's real resolver (glibc, via `getent` in a network namespace) finds a Service by
its short name through the kubelet's search path and ndots:5."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tinykube.dns.client import pod_search_list
from tinykube.dns.config import DNSConfig
from tinykube.dns.server import DNSServer
from tinykube.testing.services import service
from tinykube.testing.podnet import PodNetwork

pytestmark = pytest.mark.root


async def getent(pod: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", pod, "getent", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return proc.returncode or 0, out.decode()


async def test_short_service_name_resolves_in_a_pod(apiserver, pod_network: PodNetwork) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("getent") is None:
        pytest.skip("getent not installed")
    pod = pod_network.add_pod(http_port=None)
    search = " ".join(pod_search_list("default"))
    pod_network.write_resolv_conf(pod, f"nameserver {pod_network.gateway}\nsearch {search}\noptions ndots:5\n")
    client = apiserver.client()
    # the pod's resolver talks to port 53 on the bridge address only
    dns = DNSServer(DNSConfig(client=client, bind_address=pod_network.gateway, port=53,
                              health_port=None, ready_port=None, metrics_port=None))
    try:
        await client.resource("services").create(service("web-service", "10.96.0.100"), namespace="default")
        await dns.start()
        code, out = await getent(pod.name, "ahostsv4", "web-service")
        assert code == 0, out
        first = out.splitlines()[0].split()
        assert first[0] == "10.96.0.100" and first[-1] == "web-service.default.svc.cluster.local"
        code, _ = await getent(pod.name, "ahostsv4", "no-such-service")
        assert code == 2  # not found
    finally:
        await dns.stop()
        await client.close()
