"""`tinykube proxy` as its own process: flags, the kube-proxy ConfigMap, healthz, SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import yaml


async def test_proxy_process_serves_healthz_publishes_its_config_and_stops_on_sigterm(apiserver) -> None:  # type: ignore[no-untyped-def]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tinykube", "proxy", "--kubeconfig", apiserver.kubeconfig,
        "--mode", "userspace", "--hostname-override", "node-9", "--cluster-cidr", "10.244.0.0/16",
        "--healthz-port", "0", "--metrics-port", "0",
        stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stderr is not None
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        match = re.search(r"healthz :(\d+), metrics :(\d+)", line)
        assert match, line
        healthz, metrics = match.groups()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{healthz}/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["nodeEligible"] is True
            async with http.get(f"http://127.0.0.1:{metrics}/metrics") as resp:
                text = await resp.text()
            assert "kubeproxy_sync_proxy_rules_duration_seconds" in text
            assert 'rest_client_requests_total{code="200",host="127.0.0.1:' in text  # the informers' lists
        client = apiserver.client()
        try:
            cm = await client.resource("configmaps").get("kube-proxy", namespace="kube-system")
        finally:
            await client.close()
        conf = yaml.safe_load(cm["data"]["config.conf"])
        assert conf["kind"] == "KubeProxyConfiguration" and conf["mode"] == "userspace"
        assert conf["clusterCIDR"] == "10.244.0.0/16"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_bad_flags_give_an_error_not_a_traceback() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tinykube", "proxy", "--kubeconfig", "/nonexistent/kubeconfig",
        "--mode", "userspace", stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert err.decode().startswith("error: ") and "Traceback" not in err.decode()
