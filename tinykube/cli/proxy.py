"""`tinykube proxy`: run kube-proxy for one node (or remove its rules with `--cleanup`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from dataclasses import replace

import click

from tinykube.api.errors import ApiError
from tinykube.client.kubeconfig import KubeconfigError
from tinykube.proxy.config import ConfigError, ProxyConfig, apply_file


async def _run_until_signal(config: ProxyConfig) -> None:
    from tinykube.proxy.server import Proxy

    proxy = Proxy(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await proxy.start()
    click.echo(f"kube-proxy ({config.mode}) running for node {config.node_name}; "
               f"healthz :{proxy.healthz_port}, metrics :{proxy.metrics_port}", err=True)
    try:
        await stop.wait()
    finally:
        await proxy.stop()


def with_port(address: str, port: int | None) -> str:
    """`address` with its port replaced by `port` (when given)."""
    if port is None:
        return address
    host = address.rpartition(":")[0] if ":" in address else address
    return f"{host or '127.0.0.1'}:{port}"


async def _cleanup(config: ProxyConfig) -> str:
    """Remove what either rule-based mode installed (upstream's --cleanup does both)."""
    from tinykube.proxy.iptables.proxier import cleanup
    from tinykube.proxy.iptables.runner import Iptables
    from tinykube.proxy.nftables.proxier import Nft
    from tinykube.proxy.nftables.proxier import cleanup as nft_cleanup
    from tinykube.proxy.server import rule_config

    removed = []
    if Iptables.available():
        chains = await cleanup(rule_config(config), Iptables(netns=config.iptables_netns))
        removed.append(f"{chains} iptables chains with prefix {config.chain_prefix}")
    if Nft.available() and await nft_cleanup(config.nftables_table, Nft(netns=config.iptables_netns)):
        removed.append(f"nftables table ip {config.nftables_table}")
    return ", ".join(removed) or "nothing"


@click.command("proxy")
@click.option("--kubeconfig", type=click.Path(), help="Path to a kubeconfig file.")
@click.option("--config", "config_file", type=click.Path(), help="A KubeProxyConfiguration file.")
@click.option("--mode", type=click.Choice(["iptables", "nftables", "userspace"]), help="Which proxy mode to use.")
@click.option("--hostname-override", help="The node name to use instead of the hostname.")
@click.option("--cluster-cidr", help="The pod CIDR; traffic from outside it is masqueraded.")
@click.option("--healthz-bind-address", help="host:port for /healthz and /livez (default 127.0.0.1:10256).")
@click.option("--metrics-bind-address", help="host:port for /metrics (default 127.0.0.1:10249).")
@click.option("--healthz-port", type=int, help="Port of --healthz-bind-address (deprecated upstream flag).")
@click.option("--metrics-port", type=int, help="Port of --metrics-bind-address (deprecated upstream flag).")
@click.option("--bind-address", help="Userspace mode: address service ports listen on.")
@click.option("--iptables-min-sync-period", type=float, help="Seconds between syncs at most (default 1).")
@click.option("--iptables-sync-period", type=float, help="Seconds between syncs at least (default 30).")
@click.option("--masquerade-all", is_flag=True, default=None, help="SNAT all traffic sent via Service cluster IPs.")
@click.option("--chain-prefix", help="Prefix of the iptables chains instead of KUBE- (at most 8 characters).")
@click.option("--nftables-table", help="nftables mode: the table to own (default kube-proxy).")
@click.option("--publish-config/--no-publish-config", default=True, show_default=True,
              help="Keep the kube-system/kube-proxy ConfigMap describing this configuration.")
@click.option("--cleanup", is_flag=True, help="Remove every rule this proxy installs, then exit.")
@click.option("-v", "--v", "verbosity", type=int, default=0, help="Log level verbosity.")
def proxy(kubeconfig: str | None, config_file: str | None, mode: str | None, hostname_override: str | None,
          cluster_cidr: str | None, healthz_bind_address: str | None, metrics_bind_address: str | None,
          healthz_port: int | None, metrics_port: int | None, bind_address: str | None, iptables_min_sync_period: float | None,
          iptables_sync_period: float | None, masquerade_all: bool | None, chain_prefix: str | None, nftables_table: str | None,
          publish_config: bool, cleanup: bool, verbosity: int) -> None:
    """kube-proxy: program Services into iptables (root) or a userspace proxy."""
    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = ProxyConfig()
        if config_file:
            config = apply_file(config, config_file)
        flags = {
            "kubeconfig": kubeconfig, "mode": mode, "node_name": hostname_override,
            "cluster_cidr": cluster_cidr, "healthz_bind_address": healthz_bind_address,
            "metrics_bind_address": metrics_bind_address, "bind_address": bind_address,
            "min_sync_period": iptables_min_sync_period, "sync_period": iptables_sync_period,
            "masquerade_all": masquerade_all, "chain_prefix": chain_prefix,
            "nftables_table": nftables_table,
        }
        config = replace(config, **{k: v for k, v in flags.items() if v is not None})
        config = replace(config, publish_configmap=publish_config,
                         healthz_bind_address=with_port(config.healthz_bind_address, healthz_port),
                         metrics_bind_address=with_port(config.metrics_bind_address, metrics_port))
        config.validate()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if cleanup:
        try:
            click.echo(f"removed {asyncio.run(_cleanup(config))}", err=True)
        except (RuntimeError, OSError) as exc:  # IptablesError / NftError carry the tool's stderr
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        return
    try:
        asyncio.run(_run_until_signal(config))
    except (ConnectionError, OSError, KubeconfigError, ApiError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
