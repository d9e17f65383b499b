"""`tinykube dns`: run the cluster DNS server."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from tinykube.api.errors import ApiError
from tinykube.client.kubeconfig import KubeconfigError
from tinykube.dns.config import DNSConfig


async def _run_until_signal(config: DNSConfig) -> None:
    from tinykube.dns.server import DNSServer

    server = DNSServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    click.echo(f"cluster DNS for {config.cluster_domain} on {config.bind_address}:{server.port} (udp+tcp); "
               f"health :{server.health_port}, ready :{server.ready_port}, metrics :{server.metrics_port}",
               err=True)
    try:
        await stop.wait()
    finally:
        await server.stop()


@click.command("dns")
@click.option("--kubeconfig", type=click.Path(), help="Path to a kubeconfig file.")
@click.option("--bind-address", default="127.0.0.1", show_default=True, help="Address to answer on.")
@click.option("--port", default=53, show_default=True, type=int, help="UDP and TCP port (0 = free).")
@click.option("--cluster-domain", default="cluster.local", show_default=True)
@click.option("--ttl", default=5, show_default=True, type=int, help="TTL of answers in seconds.")
@click.option("--forward", multiple=True, help="Upstream resolver ip[:port] for other names (off by default).")
@click.option("--health-port", default=8080, show_default=True, type=int)
@click.option("--ready-port", default=8181, show_default=True, type=int)
@click.option("--metrics-port", default=9153, show_default=True, type=int)
@click.option("--ensure-service/--no-ensure-service", default=True, show_default=True,
              help="Create the kube-system/kube-dns Service if missing.")
@click.option("--service-ip", default="10.96.0.10", show_default=True,
              help="ClusterIP of the kube-dns Service (the kubelet's clusterDNS).")
def dns(kubeconfig: str | None, bind_address: str, port: int, cluster_domain: str, ttl: int,
        forward: tuple[str, ...], health_port: int, ready_port: int, metrics_port: int,
        ensure_service: bool, service_ip: str) -> None:
    """Cluster DNS: <svc>.<ns>.svc.cluster.local from Services and EndpointSlices."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = DNSConfig(kubeconfig=kubeconfig, bind_address=bind_address, port=port,
                       cluster_domain=cluster_domain, ttl=ttl, forward=list(forward),
                       health_port=health_port, ready_port=ready_port, metrics_port=metrics_port,
                       ensure_service=ensure_service, service_ip=service_ip)
    try:
        asyncio.run(_run_until_signal(config))
    except (ConnectionError, OSError, KubeconfigError, ApiError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
