"""`tinykube controller-manager`: kube-controller-manager's flags onto ControllerManagerConfig."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys

import click

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for the units flags use (``40s``, ``1m30s``), or seconds."""
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise click.BadParameter(f'time: invalid duration "{text}"')
    return total


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "t", "yes"):
        return True
    if lowered in ("false", "0", "f", "no"):
        return False
    raise click.BadParameter(f'strconv.ParseBool: parsing "{text}": invalid syntax')


async def _run_until_signal(config) -> None:
    from tinykube.controllers.manager import ControllerManager

    manager = ControllerManager(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await manager.start()
    click.echo(f"kube-controller-manager {manager.identity} running controllers "
               f"{', '.join(sorted(manager.names))}; secure port {manager.port}", err=True)
    try:
        await stop.wait()
    finally:
        await manager.stop()


@click.command("controller-manager")
@click.option("--kubeconfig", type=click.Path(), help="Path to a kubeconfig file.")
@click.option("--controllers", default="*",
              help="Controllers to enable: '*' all, 'foo' enables, '-foo' disables.")
@click.option("--leader-elect", default="true", is_flag=False, flag_value="true",
              help="Campaign for the kube-system/kube-controller-manager Lease (default true).")
@click.option("--leader-elect-lease-duration", default="15s")
@click.option("--leader-elect-renew-deadline", default="10s")
@click.option("--leader-elect-retry-period", default="2s")
@click.option("--bind-address", default="127.0.0.1", help="Address of the secure port.")
@click.option("--secure-port", type=int, default=10257, help="HTTPS port for healthz/metrics.")
@click.option("--node-monitor-grace-period", default="40s",
              help="How long a node may stop posting status before it is NotReady.")
@click.option("--node-startup-grace-period", default="1m0s")
@click.option("--node-monitor-period", default="5s")
@click.option("--cluster-cidr", default="10.244.0.0/16", help="CIDR range for pods.")
@click.option("--node-cidr-mask-size", type=int, default=24)
@click.option("--allocate-node-cidrs", default="true", is_flag=False, flag_value="true")
@click.option("--terminated-pod-gc-threshold", type=int, default=12500)
@click.option("--root-ca-file", type=click.Path(), help="CA published as kube-root-ca.crt.")
@click.option("--pv-host-path-dir", default="/var/lib/tinykube/pv",
              help="Where the hostPath provisioner creates volumes.")
@click.option("-v", "--v", "verbosity", type=int, default=0, help="Log level verbosity.")
def controller_manager(kubeconfig: str | None, controllers: str, leader_elect: str,
                       leader_elect_lease_duration: str, leader_elect_renew_deadline: str,
                       leader_elect_retry_period: str, bind_address: str, secure_port: int,
                       node_monitor_grace_period: str, node_startup_grace_period: str,
                       node_monitor_period: str, cluster_cidr: str, node_cidr_mask_size: int,
                       allocate_node_cidrs: str, terminated_pod_gc_threshold: int,
                       root_ca_file: str | None, pv_host_path_dir: str,
                       verbosity: int) -> None:
    """kube-controller-manager: the control loops that drive objects to their spec."""
    from tinykube.controllers.config import ControllerManagerConfig
    from tinykube.controllers.registry import enabled_controllers

    logging.basicConfig(level=logging.DEBUG if verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = [c for c in controllers.split(",") if c.strip()]
    try:
        enabled_controllers(names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--controllers") from exc
    config = ControllerManagerConfig(
        kubeconfig=kubeconfig, controllers=names, leader_elect=parse_bool(leader_elect),
        leader_elect_lease_duration=parse_duration(leader_elect_lease_duration),
        leader_elect_renew_deadline=parse_duration(leader_elect_renew_deadline),
        leader_elect_retry_period=parse_duration(leader_elect_retry_period),
        bind_address=bind_address, secure_port=secure_port,
        node_monitor_grace_period=parse_duration(node_monitor_grace_period),
        node_startup_grace_period=parse_duration(node_startup_grace_period),
        node_monitor_period=parse_duration(node_monitor_period),
        cluster_cidr=cluster_cidr, node_cidr_mask_size=node_cidr_mask_size,
        allocate_node_cidrs=parse_bool(allocate_node_cidrs),
        terminated_pod_gc_threshold=terminated_pod_gc_threshold,
        root_ca_file=root_ca_file, pv_host_path_dir=pv_host_path_dir)
    try:
        asyncio.run(_run_until_signal(config))
    except (OSError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
