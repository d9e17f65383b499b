"""`tinykube dashboard`: serve the web UI for a cluster until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from tinykube.api.errors import ApiError
from tinykube.client.kubeconfig import KubeconfigError


async def _run_until_signal(config) -> None:
    from tinykube.dashboard import Dashboard

    dashboard = Dashboard(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await dashboard.start()
        click.echo(f"dashboard: {dashboard.url}/", err=True)
        await stop.wait()
    finally:
        await dashboard.stop()


@click.command("dashboard")
@click.option("--kubeconfig", type=click.Path(), help="Path to a kubeconfig file.")
@click.option("--context", default=None, help="The kubeconfig context to use.")
@click.option("--port", type=int, default=8001, show_default=True,
              help="Port to serve the dashboard on (0 picks a free one).")
@click.option("--bind-address", default="127.0.0.1", show_default=True,
              help="Address to listen on. The dashboard acts with the kubeconfig's "
                   "credentials and has no login: keep it on loopback.")
@click.option("-v", "--v", "verbosity", type=int, default=0, help="Log level verbosity.")
def dashboard(kubeconfig: str | None, context: str | None, port: int, bind_address: str,
              verbosity: int) -> None:
    """The web UI: nodes, workloads, services and events, updated live."""
    from tinykube.dashboard import DashboardConfig

    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = DashboardConfig(kubeconfig=kubeconfig, context=context, port=port,
                             bind_address=bind_address)
    try:
        asyncio.run(_run_until_signal(config))
    except (ConnectionError, OSError, KubeconfigError, ApiError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
