"""`tinykube cloud-controller-manager`: LoadBalancer addresses from a local pool."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from tinykube.cli.controller_manager import parse_bool, parse_duration


async def _run_until_signal(config) -> None:
    from tinykube.cloud.manager import CloudControllerManager

    manager = CloudControllerManager(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await manager.start()
    click.echo(f"cloud-controller-manager {manager.identity} running "
               f"{', '.join(sorted(manager.names))}; pool {config.lb_ip_range}; "
               f"secure port {manager.port}", err=True)
    try:
        await stop.wait()
    finally:
        await manager.stop()


@click.command("cloud-controller-manager")
@click.option("--kubeconfig", type=click.Path(), help="Path to a kubeconfig file.")
@click.option("--controllers", default="*", help="Controllers to enable ('*' all).")
@click.option("--lb-ip-range", default="172.18.255.200-172.18.255.250",
              help="LoadBalancer address pool: a-b range or CIDR (never contacted).")
@click.option("--leader-elect", default="true", is_flag=False, flag_value="true")
@click.option("--leader-elect-lease-duration", default="15s")
@click.option("--leader-elect-renew-deadline", default="10s")
@click.option("--leader-elect-retry-period", default="2s")
@click.option("--bind-address", default="127.0.0.1")
@click.option("--secure-port", type=int, default=10258)
@click.option("-v", "--v", "verbosity", type=int, default=0)
def cloud_controller_manager(kubeconfig: str | None, controllers: str, lb_ip_range: str,
                             leader_elect: str, leader_elect_lease_duration: str,
                             leader_elect_renew_deadline: str, leader_elect_retry_period: str,
                             bind_address: str, secure_port: int, verbosity: int) -> None:
    """cloud-controller-manager: cloud-specific control loops (here: service LBs)."""
    from tinykube.cloud.manager import CloudControllerManagerConfig, resolve_cloud_controllers
    from tinykube.cloud.servicelb import parse_range

    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = [c for c in controllers.split(",") if c.strip()]
    try:
        parse_range(lb_ip_range)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--lb-ip-range") from exc
    config = CloudControllerManagerConfig(
        kubeconfig=kubeconfig, controllers=names, lb_ip_range=lb_ip_range,
        leader_elect=parse_bool(leader_elect),
        leader_elect_lease_duration=parse_duration(leader_elect_lease_duration),
        leader_elect_renew_deadline=parse_duration(leader_elect_renew_deadline),
        leader_elect_retry_period=parse_duration(leader_elect_retry_period),
        bind_address=bind_address, secure_port=secure_port)
    try:
        resolve_cloud_controllers(names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--controllers") from exc
    try:
        asyncio.run(_run_until_signal(config))
    except (OSError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
