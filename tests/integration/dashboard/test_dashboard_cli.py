"""`tinykube dashboard` as its own process, against an in-process cluster."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from tinykube.testing import cluster

TIMEOUT = 30.0


async def test_cli_serves_the_cluster_and_stops_on_sigterm():
    async with cluster(nodes=1) as c:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tinykube", "dashboard", "--kubeconfig", c.kubeconfig,
            "--port", "0", stderr=asyncio.subprocess.PIPE)
        try:
            async def url() -> str:
                while line := (await proc.stderr.readline()).decode():
                    found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+)/", line)
                    if found:
                        return found.group(1)
                raise AssertionError("the dashboard exited before listening")

            base = await asyncio.wait_for(url(), TIMEOUT)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/api/overview") as resp:
                    overview = await resp.json()
            assert [n["name"] for n in overview["nodes"]] == ["node-0"]
            assert overview["nodesReady"] == 1
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_cli_reports_an_unreachable_kubeconfig(tmp_path):
    missing = tmp_path / "nope"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tinykube", "dashboard", "--kubeconfig", str(missing),
        "--port", "0", stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 1 and b"error:" in err
