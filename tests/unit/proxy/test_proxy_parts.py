"""Config loading, the bounded-frequency runner, health logic and the userspace balancer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tinykube.proxy.bounded import BoundedFrequencyRunner
from tinykube.proxy.config import ConfigError, ProxyConfig, apply_file, parse_duration
from tinykube.proxy.health import ProxierHealth
from tinykube.proxy.model import Endpoint
from tinykube.proxy.userspace import Balancer


def test_kube_proxy_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "kube-proxy.yaml"
    path.write_text(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
        "mode: userspace\nclusterCIDR: 10.244.0.0/16\nhostnameOverride: node-7\n"
        "healthzBindAddress: 0.0.0.0\nmetricsBindAddress: 127.0.0.1:19249\n"
        "iptables:\n  minSyncPeriod: 500ms\n  syncPeriod: 1m30s\n  masqueradeBit: 15\n")
    config = apply_file(ProxyConfig(), str(path))
    assert (config.mode, config.cluster_cidr, config.node_name) == ("userspace", "10.244.0.0/16", "node-7")
    assert config.healthz_bind_address == "0.0.0.0:10256"
    assert config.metrics_bind_address == "127.0.0.1:19249"
    assert (config.min_sync_period, config.sync_period, config.masquerade_bit) == (0.5, 90.0, 15)


@pytest.mark.parametrize("text, message", [
    ("apiVersion: v1\nkind: ConfigMap\n", 'no kind "ConfigMap" is registered'),
    ("kind: KubeProxyConfiguration\nmode: ipvs\n", 'invalid proxy mode "ipvs"'),
    ("kind: KubeProxyConfiguration\niptables:\n  syncPeriod: soon\n", 'invalid duration "soon"'),
    ("[unclosed", "failed to read config file"),
])
def test_bad_configuration_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        apply_file(ProxyConfig(), str(path))


@pytest.mark.parametrize("prefix", ["WAYTOOLONG-", "KUBE", "bad prefix-"])
def test_chain_prefix_must_fit_iptables_names(prefix: str) -> None:
    with pytest.raises(ConfigError, match="invalid chain prefix"):
        ProxyConfig(chain_prefix=prefix).validate()


def test_durations() -> None:
    assert parse_duration("1s") == 1.0 and parse_duration("250ms") == 0.25
    assert parse_duration("1h2m3s") == 3723.0 and parse_duration(0) == 0.0


async def test_runner_coalesces_requests_and_honours_min_interval() -> None:
    runs: list[float] = []
    first, done = asyncio.Event(), asyncio.Event()

    async def sync() -> None:
        runs.append(asyncio.get_running_loop().time())
        (first if len(runs) == 1 else done).set()

    runner = BoundedFrequencyRunner("test", sync, min_interval=0.2, max_interval=60)
    task = asyncio.create_task(runner.loop())
    try:
        for _ in range(5):
            runner.run()
        await asyncio.wait_for(first.wait(), 2)
        for _ in range(5):
            runner.run()  # all coalesce into the second run, held back by min_interval
        await asyncio.wait_for(done.wait(), 2)
        assert len(runs) == 2 and runs[1] - runs[0] >= 0.19
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_runner_runs_at_least_every_max_interval() -> None:
    count = 0
    twice = asyncio.Event()

    async def sync() -> None:
        nonlocal count
        count += 1
        if count == 2:
            twice.set()

    runner = BoundedFrequencyRunner("test", sync, min_interval=0, max_interval=0.05)
    task = asyncio.create_task(runner.loop())
    try:
        await asyncio.wait_for(twice.wait(), 2)  # nobody called run()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_health_is_bad_only_when_an_update_waits_too_long() -> None:
    health = ProxierHealth(health_timeout=60)
    assert health.healthy(now=1000)
    health.queued()
    queued_at = health.oldest_queued
    assert queued_at is not None
    assert health.healthy(now=queued_at + 59) and not health.healthy(now=queued_at + 61)
    health.updated()
    assert health.healthy(now=queued_at + 1000)
    assert health.body()["lastUpdated"].endswith("Z")


def test_balancer_round_robin_and_affinity() -> None:
    a, b = Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80)
    rr = Balancer()
    rr.update((a, b), 0)
    assert [rr.pick("c1") for _ in range(4)] == [a, b, a, b]
    sticky = Balancer()
    sticky.update((a, b), 10)
    first = sticky.pick("c1", now=0)
    assert all(sticky.pick("c1", now=t) == first for t in (1, 5, 14))
    assert sticky.pick("c2", now=0) != first  # another client continues the rotation
    assert sticky.pick("c1", now=100) is not None  # expired affinity picks afresh
    sticky.update((b,), 10)
    assert sticky.pick("c1", now=101) == b  # affinity to a removed endpoint is dropped
    assert Balancer().pick("c1") is None


def test_configmap_round_trips_through_the_file_loader(tmp_path: Path) -> None:
    from tinykube.proxy.configmap import kube_proxy_configmap

    config = ProxyConfig(mode="iptables", cluster_cidr="10.244.0.0/16", min_sync_period=0.5)
    data = kube_proxy_configmap(config)["data"]["config.conf"]
    assert "mode: iptables" in data
    path = tmp_path / "config.conf"
    path.write_text(data)
    loaded = apply_file(ProxyConfig(mode="userspace"), str(path))
    assert (loaded.mode, loaded.cluster_cidr, loaded.min_sync_period) == ("iptables", "10.244.0.0/16", 0.5)
