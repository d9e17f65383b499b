"""`tinykube kubelet`: run the node agent until SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys

import click

from tinykube.api.errors import ApiError
from tinykube.client.kubeconfig import KubeconfigError
from tinykube.kubelet.config import ConfigError, KubeletConfig, load_file, validate


async def _run_until_signal(config: KubeletConfig) -> None:
    from tinykube.kubelet import Kubelet

    kubelet = Kubelet(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await kubelet.start()
    gc.freeze()  # what start-up loaded lives as long as the process: keep it out of every collection
    click.echo(f"kubelet running for node {config.node_name} (runtime {config.runtime}); "
               f"https://{config.address}:{kubelet.server.port}, healthz "
               f"http://{config.healthz_bind_address}:{kubelet.server.healthz_port}/healthz", err=True)
    try:
        await stop.wait()
    finally:
        await kubelet.stop()


def _labels(value: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (value or "").split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep:
            raise ConfigError(f'--node-labels: invalid label "{item}": expected key=value')
        out[key.strip()] = val.strip()
    return out


@click.command("kubelet")
@click.option("--kubeconfig", type=click.Path(), help="kubeconfig for the API server.")
@click.option("--config", "config_file", type=click.Path(), help="A KubeletConfiguration file.")
@click.option("--node-name", help="The node's name (default: the hostname).")
@click.option("--runtime", type=click.Choice(["process", "fake"]), default=None,
              help="Container runtime: host processes in namespaces, or nothing at all (hollow).")
@click.option("--pod-manifest-path", help="Directory of static pod manifests.")
@click.option("--root-dir", help="Where the kubelet keeps pods, volumes and logs.")
@click.option("--address", help="Address of the kubelet API (default 127.0.0.1).")
@click.option("--port", type=int, help="Port of the kubelet API (HTTPS, default 10250; 0 picks one).")
@click.option("--healthz-port", type=int, help="Port of /healthz (HTTP, default 10248).")
@click.option("--node-ip", help="The node's InternalIP (default 127.0.0.1).")
@click.option("--node-labels", help="Extra labels: key=value,key2=value2.")
@click.option("--cluster-dns", help="Comma-separated DNS server IPs for pods.")
@click.option("--cluster-domain", help="The cluster's DNS domain (default cluster.local).")
@click.option("--max-pods", type=int, help="Pods this node runs at most (default 110).")
@click.option("--pod-cidr", help="Pod addresses when the Node has no spec.podCIDR (default 10.244.0.0/24).")
@click.option("--bridge", help="Name of the pod network bridge (default tkb0).")
@click.option("--crashloop-base-backoff", type=float, help="First crash-loop back-off in seconds (default 10).")
@click.option("--node-status-update-frequency", type=float, help="Seconds between node status updates.")
@click.option("--shutdown-pods-on-exit", is_flag=True, default=False,
              help="Stop the node's pods when the kubelet exits (tinykube always does: its shims die with it).")
@click.option("-v", "--v", "verbosity", type=int, default=0, help="Log level verbosity.")
def kubelet(kubeconfig: str | None, config_file: str | None, node_name: str | None, runtime: str | None,
            pod_manifest_path: str | None, root_dir: str | None, address: str | None, port: int | None,
            healthz_port: int | None, node_ip: str | None, node_labels: str | None, cluster_dns: str | None,
            cluster_domain: str | None, max_pods: int | None, pod_cidr: str | None, bridge: str | None,
            crashloop_base_backoff: float | None, node_status_update_frequency: float | None,
            shutdown_pods_on_exit: bool, verbosity: int) -> None:
    """The kubelet: register the node, run its pods, report their status."""
    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        config = KubeletConfig(node_name=node_name or socket.gethostname().lower())
        if config_file:
            for warning in load_file(config, config_file):
                click.echo(f"warning: {config_file}: {warning}", err=True)
        flags = {"kubeconfig": kubeconfig, "runtime": runtime, "pod_manifest_path": pod_manifest_path,
                 "root_dir": root_dir, "address": address, "port": port, "healthz_port": healthz_port,
                 "node_ip": node_ip, "cluster_domain": cluster_domain, "max_pods": max_pods,
                 "pod_cidr": pod_cidr, "bridge": bridge, "crashloop_base_backoff": crashloop_base_backoff,
                 "node_status_update_frequency": node_status_update_frequency}
        for key, value in flags.items():
            if value is not None:
                setattr(config, key, value)
        if cluster_dns:
            config.cluster_dns = [s.strip() for s in cluster_dns.split(",") if s.strip()]
        if node_labels:
            config.node_labels = _labels(node_labels)
        validate(config)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    try:
        asyncio.run(_run_until_signal(config))
    except (ConnectionError, OSError, KubeconfigError, ApiError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
