"""`tinykube scheduler`: run kube-scheduler against an API server until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from tinykube.api.errors import ApiError
from tinykube.client.kubeconfig import KubeconfigError
from tinykube.scheduler.config import ConfigError


async def _run_until_signal(config) -> bool:
    """Run until SIGTERM/SIGINT (True) or until leadership is lost (False)."""
    from tinykube.scheduler import Scheduler

    scheduler = Scheduler(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await scheduler.start()
    elect = "with leader election" if scheduler.elector else "without leader election"
    click.echo(f"kube-scheduler running {elect}; healthz and metrics on "
               f"{config.bind_address}:{scheduler.port}", err=True)
    stopped = asyncio.ensure_future(stop.wait())
    lost = asyncio.ensure_future(scheduler.lost_leadership.wait())
    try:
        await asyncio.wait({stopped, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        lost.cancel()
        await scheduler.stop()
    return not scheduler.lost_leadership.is_set()


@click.command("scheduler")
@click.option("--kubeconfig", type=click.Path(), help="Path to a kubeconfig file.")
@click.option("--config", "config_file", type=click.Path(),
              help="A KubeSchedulerConfiguration file (or a ConfigMap holding one).")
@click.option("--leader-elect/--no-leader-elect", default=None,
              help="Elect a leader on the kube-system/kube-scheduler Lease before scheduling "
                   "(default: as the configuration says, which defaults to true).")
@click.option("--secure-port", type=int, default=10259, show_default=True,
              help="Port for /healthz and /metrics (0 picks a free one).")
@click.option("--bind-address", default="127.0.0.1", show_default=True,
              help="Address for /healthz and /metrics.")
@click.option("--explain", is_flag=True,
              help="Write each pod's per-plugin filter and score results as annotations.")
@click.option("-v", "--v", "verbosity", type=int, default=0, help="Log level verbosity.")
def scheduler(kubeconfig: str | None, config_file: str | None, leader_elect: bool | None,
              secure_port: int, bind_address: str, explain: bool, verbosity: int) -> None:
    """kube-scheduler: assign pending pods to nodes."""
    from tinykube.scheduler import SchedulerConfig

    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = SchedulerConfig(kubeconfig=kubeconfig, config_file=config_file,
                             leader_elect=leader_elect, secure_port=secure_port,
                             bind_address=bind_address, explain=explain)
    try:
        clean = asyncio.run(_run_until_signal(config))
    except (ConnectionError, OSError, KubeconfigError, ApiError, ConfigError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if not clean:
        click.echo("error: leaderelection lost", err=True)
        sys.exit(1)
