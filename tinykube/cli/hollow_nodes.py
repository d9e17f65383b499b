"""`tinykube hollow-nodes`: register N simulated nodes and act as their kubelets."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import click

from tinykube.api.errors import ApiError
from tinykube.client.kubeconfig import KubeconfigError


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected key=value", param_hint="--label")
        out[key] = value
    return out


async def _run_until_signal(kubeconfig: str | None, count: int, template, prefix: str,
                            start_delay: float, lease_interval: float, first_index: int,
                            delete_on_stop: bool) -> None:
    from tinykube.client.rest import Client
    from tinykube.kubelet.hollow import HollowNodes

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Client.from_kubeconfig(kubeconfig, user_agent="tinykube-hollow-nodes") as client:
        nodes = HollowNodes(client, count=count, capacity=template, name_prefix=prefix,
                            start_delay=start_delay, lease_interval=lease_interval,
                            first_index=first_index, delete_on_stop=delete_on_stop)
        await nodes.start()
        click.echo(f"{count} hollow nodes registered ({prefix}{first_index} .. "
                   f"{prefix}{first_index + count - 1})", err=True)
        try:
            await stop.wait()
        finally:
            await nodes.stop()


@click.command("hollow-nodes")
@click.option("--kubeconfig", type=click.Path(), help="Path to a kubeconfig file.")
@click.option("--count", type=click.IntRange(1, 49152), default=1, show_default=True)
@click.option("--cpu", default="4", show_default=True, help="CPU capacity per node.")
@click.option("--memory", default="16Gi", show_default=True, help="Memory capacity per node.")
@click.option("--pods", type=int, default=110, show_default=True, help="Pods per node.")
@click.option("--ephemeral-storage", default="100Gi", show_default=True)
@click.option("--gpus", type=int, default=0, show_default=True,
              help="nvidia.com/gpu capacity per node.")
@click.option("--label", "labels", multiple=True, help="key=value label (repeatable).")
@click.option("--taint", "taints", multiple=True,
              help="key[=value]:Effect taint (repeatable).")
@click.option("--name-prefix", default="hollow-node-", show_default=True)
@click.option("--first-index", type=int, default=0, show_default=True,
              help="Number of the first node (to run several groups).")
@click.option("--start-delay", type=float, default=0.0, show_default=True,
              help="Seconds before a bound pod is reported Running.")
@click.option("--lease-interval", type=float, default=10.0, show_default=True,
              help="Seconds between node Lease renewals (0 disables heartbeats).")
@click.option("--delete-on-stop", is_flag=True, help="Delete the nodes on exit.")
@click.option("-v", "--v", "verbosity", type=int, default=0, help="Log level verbosity.")
def hollow_nodes(kubeconfig: str | None, count: int, cpu: str, memory: str, pods: int,
                 ephemeral_storage: str, gpus: int, labels: tuple[str, ...],
                 taints: tuple[str, ...], name_prefix: str, first_index: int,
                 start_delay: float, lease_interval: float, delete_on_stop: bool,
                 verbosity: int) -> None:
    """Simulated nodes (like KWOK/kubemark): real Node objects, Leases and pod status."""
    from tinykube.api.quantity import parse_quantity
    from tinykube.kubelet.hollow import NodeTemplate, parse_taint

    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        for flag, value in (("--cpu", cpu), ("--memory", memory),
                            ("--ephemeral-storage", ephemeral_storage)):
            try:
                parse_quantity(value)
            except ValueError:
                raise click.BadParameter(f"{value!r} is not a quantity", param_hint=flag)
        parsed_taints = []
        for taint in taints:
            try:
                parsed_taints.append(parse_taint(taint))
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--taint")
        template = NodeTemplate(cpu=cpu, memory=memory, pods=pods,
                                ephemeral_storage=ephemeral_storage, gpus=gpus,
                                labels=_labels(labels), taints=parsed_taints)
    except click.BadParameter as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(2)
    try:
        asyncio.run(_run_until_signal(kubeconfig, count, template, name_prefix, start_delay,
                                      lease_interval, first_index, delete_on_stop))
    except (ConnectionError, OSError, KubeconfigError, ApiError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
