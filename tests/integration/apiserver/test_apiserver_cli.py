"""``tinykube apiserver`` as a process: kubeconfig, persistence across restarts, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import yaml

STARTUP_TIMEOUT = 30


async def start(tmp_path, *extra: str) -> tuple[asyncio.subprocess.Process, str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    if kubeconfig.exists():
        kubeconfig.unlink()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tinykube.cli.main", "apiserver",
        "--store", f"sqlite://{tmp_path}/store.db", "--secure-port", "0",
        "--write-kubeconfig", str(kubeconfig), *extra,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), STARTUP_TIMEOUT)
        assert line, "apiserver exited before serving"
        if b"serving on" in line:
            url = line.decode().strip().rsplit(" ", 1)[-1]
            break
    # keep draining stderr so the process never blocks on a full pipe
    drain = asyncio.create_task(proc.stderr.read())
    proc.drain = drain  # type: ignore[attr-defined]
    return proc, url, str(kubeconfig)


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), STARTUP_TIMEOUT)
    await proc.drain  # type: ignore[attr-defined]
    return code


async def test_cli_serves_persists_and_stops_on_sigterm(tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('t0ken,alice,u1,"system:masters"\n')
    proc, url, kubeconfig = await start(tmp_path, "--token-file", str(tokens))
    try:
        config = yaml.safe_load(open(kubeconfig))
        assert config["current-context"] == "tinykube"
        assert config["clusters"][0]["cluster"]["server"] == url
        headers = {"Authorization": "Bearer t0ken"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(url + "/api/v1/namespaces/default/configmaps",
                                    json={"metadata": {"name": "kept"}}) as resp:
                assert resp.status == 201
            async with session.post(url + "/api/v1/namespaces/default/services", json={
                    "metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}) as resp:
                assert resp.status == 201
                ip = (await resp.json())["spec"]["clusterIP"]
    finally:
        assert await stop(proc) == 0
    proc, url, _ = await start(tmp_path)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/api/v1/namespaces/default/configmaps/kept") as resp:
                assert resp.status == 200
            # the allocation bitmap survived: the same address is not handed out again
            async with session.post(url + "/api/v1/namespaces/default/services", json={
                    "metadata": {"name": "svc2"}, "spec": {"clusterIP": ip,
                                                           "ports": [{"port": 80}]}}) as resp:
                assert resp.status == 422
            async with session.get(url + "/api/v1/namespaces/default/endpoints/kubernetes") \
                    as resp:
                port = (await resp.json())["subsets"][0]["ports"][0]["port"]
                assert port == int(url.rsplit(":", 1)[-1])
    finally:
        assert await stop(proc) == 0
