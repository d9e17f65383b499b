"""``tinykube up`` / ``down`` / ``status``: a whole cluster on this machine in one command.

``up`` lays out the cluster directory (see ``tinykube.cli.cluster``), writes the admin
kubeconfig and merges it into ``~/.kube/config``, writes static pod manifests for the
control plane, starts the supervisor (which runs the kubelet, which runs the manifests), and
shows each component coming up until the cluster answers. Running ``up`` again resumes the
same cluster with its objects; ``down`` stops every process of it.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from tinykube.cli import health

from tinykube.cli.cluster import (
    ClusterDir,
    ClusterSettings,
    ensure_bytecode,
    free_port,
    process_alive,
    kubelet_configuration,
    ports_in_use,
    spawn_supervisor,
)


# rich and the health checks (asyncio) are imported only when needed: `up` starts the
# supervisor first, so that the cluster boots while this process draws the progress view.
@functools.cache
def _console() -> "Console":
    from rich.console import Console

    return Console(stderr=True)
READY_TIMEOUT_SECONDS = 60.0


def _cluster_dir(name: str, directory: str | None) -> ClusterDir:
    return ClusterDir(Path(directory).expanduser()) if directory else ClusterDir.for_name(name)


def _default_proxy_mode() -> str:
    """iptables where the machine allows it (root with iptables-restore), else userspace."""
    from shutil import which

    return "iptables" if os.geteuid() == 0 and which("iptables-restore") else "userspace"


def _new_settings(name: str, store: str, etcd_servers: str, nodes: int, hollow: int,
                  proxy_mode: str | None, free_ports: bool, grace: float,
                  dashboard: bool) -> ClusterSettings:
    settings = ClusterSettings(name=name, store="etcd" if etcd_servers else store,
                               etcd_servers=etcd_servers, nodes=nodes, hollow_nodes=hollow,
                               proxy_mode=proxy_mode or _default_proxy_mode(),
                               node_monitor_grace_period=grace, dashboard=dashboard)
    if free_ports:
        settings.ports = {key: free_port() for key in settings.ports}
    return settings


def write_admin_kubeconfig(cluster: ClusterDir, settings: ClusterSettings) -> str:
    """Write admin.conf; returns the API server URL."""
    server = f"http://127.0.0.1:{settings.ports['apiserver']}"
    name = f"tinykube-{settings.name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": f"{name}-admin", "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
        "preferences": {},
    }
    cluster.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster.kubeconfig.chmod(0o600)
    return server


def merge_kubeconfig(source: Path, target: Path, make_current: bool = True) -> None:
    """Merge one kubeconfig's clusters, users and contexts into another (by name)."""
    incoming = yaml.safe_load(source.read_text())
    existing: dict = {}
    if target.exists():
        existing = yaml.safe_load(target.read_text()) or {}
    existing.setdefault("apiVersion", "v1")
    existing.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        names = {entry["name"] for entry in incoming.get(section, [])}
        kept = [e for e in existing.get(section) or [] if e.get("name") not in names]
        existing[section] = kept + incoming.get(section, [])
    if make_current or not existing.get("current-context"):
        existing["current-context"] = incoming["current-context"]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(existing, sort_keys=False))
    target.chmod(0o600)


def _status_table(checks: list["health.Check"], elapsed: float) -> "Table":
    from rich.table import Table

    table = Table(title=f"tinykube up ({elapsed:4.1f}s)", title_justify="left")
    table.add_column("component")
    table.add_column("endpoint")
    table.add_column("status")
    for check in checks:
        mark = "[green]ready[/]" if check.ok else f"[yellow]{check.detail or 'starting'}[/]"
        table.add_row(check.name, check.endpoint, mark)
    return table


async def _wait_ready(settings: ClusterSettings, live: "Live | None", timeout: float) -> bool:
    """Refresh the progress view until every component reports healthy (or time runs out)."""
    import asyncio

    from tinykube.cli import health

    start = time.monotonic()
    checks = health.component_checks(settings)
    # Only what has not answered yet is polled (this process shares the cores with the
    # cluster it waits for); once everything has, one more round over all of them must
    # find every component healthy at the same time.
    pending = checks
    shown: tuple = ()
    shown_at = 0.0

    def show(force: bool = False) -> None:
        # Drawn when a status changes, else twice a second for the clock: a table costs
        # milliseconds of CPU to render.
        nonlocal shown, shown_at
        state = tuple((check.ok, check.detail) for check in checks)
        now = time.monotonic()
        if live is not None and (force or state != shown or now - shown_at >= 0.5):
            live.update(_status_table(checks, now - start), refresh=True)
            shown, shown_at = state, now

    while True:
        await health.run_checks(pending)
        if all(check.ok for check in checks):
            await health.run_checks(checks)
            if all(check.ok for check in checks):
                show(force=True)
                return True
        pending = [check for check in checks if not check.ok]
        show()
        if time.monotonic() - start > timeout:
            return False
        await asyncio.sleep(0.05)


def _summary(cluster: ClusterDir, settings: ClusterSettings, server: str, merged: bool,
             elapsed: float) -> None:
    context = f"tinykube-{settings.name}"
    _console().print(f"[bold green]Cluster {settings.name!r} is up[/] in {elapsed:.1f}s")
    _console().print(f"  API server:  {server}")
    _console().print(f"  kubeconfig:  {cluster.kubeconfig}"
                  + (f" (merged into ~/.kube/config as context {context})" if merged else ""))
    _console().print(f"  store:       {settings.store}"
                  + (f" ({cluster.store_url})" if settings.store == "sqlite" else ""))
    _console().print(f"  logs:        {cluster.logs}")
    from tinykube.kubelet.runtime.process import can_isolate, no_pod_network

    shared = no_pod_network(can_isolate())
    if shared:
        _console().print(f"  pods:        on the host's network: {shared}")
    if settings.dashboard:
        _console().print(f"  dashboard:   http://127.0.0.1:{settings.ports['dashboard']}/")
    _console().print("  try:         kubectl get pods -n kube-system")
    _console().print(f"  stop with:   tinykube down --name {settings.name}")


@click.command()
@click.option("--name", default="default", show_default=True, help="Cluster name.")
@click.option("--dir", "directory", default=None,
              help="Cluster directory (default ~/.tinykube/<name>).")
@click.option("--store", type=click.Choice(["sqlite", "etcd"]), default="sqlite",
              show_default=True, help="sqlite: embedded; etcd: start and supervise a local etcd.")
@click.option("--etcd-servers", default="", help="Use an existing etcd cluster (HOST:PORT,...).")
@click.option("--nodes", default=0, show_default=True, help="Extra kubelets (worker nodes).")
@click.option("--hollow-nodes", "hollow", default=0, show_default=True,
              help="Simulated nodes (pods become Running without processes).")
@click.option("--proxy-mode", type=click.Choice(["iptables", "userspace"]), default=None,
              help="kube-proxy mode (default: iptables when root, else userspace).")
@click.option("--node-monitor-grace-period", "grace", default=40.0, show_default=True,
              help="Seconds without a heartbeat before a node is NotReady (Unknown).")
@click.option("--dashboard", is_flag=True, help="Also run the web UI (port 8001).")
@click.option("--free-ports", is_flag=True,
              help="Pick free ports instead of the standard ones (6443, 10250, ...).")
@click.option("--merge-kubeconfig/--no-merge-kubeconfig", "merge", default=True,
              show_default=True, help="Merge the kubeconfig into ~/.kube/config.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until every component is healthy.")
@click.option("--timeout", default=READY_TIMEOUT_SECONDS, show_default=True)
def up(name: str, directory: str | None, store: str, etcd_servers: str, nodes: int,
       hollow: int, proxy_mode: str | None, grace: float, dashboard: bool, free_ports: bool,
       merge: bool, wait: bool, timeout: float) -> None:
    """Start (or resume) a single-machine cluster."""
    cluster = _cluster_dir(name, directory)
    start = time.monotonic()
    if cluster.settings_file.exists():
        settings = ClusterSettings.load(cluster.settings_file)
        resumed = True
    else:
        settings = _new_settings(name, store, etcd_servers, nodes, hollow, proxy_mode,
                                 free_ports, grace, dashboard)
        resumed = False
    if cluster.supervisor_pid() is not None:
        _console().print(f"cluster {settings.name!r} is already running "
                      f"(supervisor PID {cluster.supervisor_pid()})")
        return
    busy = ports_in_use(settings.ports)
    if busy:
        raise click.ClickException(
            "ports in use: " + ", ".join(busy) + " (another cluster? try --free-ports "
            "with a new --name)")
    cluster.create()
    settings.save(cluster.settings_file)
    server = write_admin_kubeconfig(cluster, settings)
    (cluster.kubelet_dir / "config.yaml").write_text(
        yaml.safe_dump(kubelet_configuration(cluster, settings), sort_keys=False))
    # The cluster boots while this process does the rest (on the same cores: what is left
    # here should be light).
    pid = spawn_supervisor(cluster)
    if merge:
        merge_kubeconfig(cluster.kubeconfig, Path.home() / ".kube" / "config")
    ensure_bytecode()
    _console().print(("Resuming" if resumed else "Creating") +
                  f" cluster {settings.name!r} in {cluster.root} (supervisor PID {pid})")
    if not wait:
        return
    import asyncio

    from rich.live import Live

    with Live(console=_console(), auto_refresh=False, transient=False) as live:
        ready = asyncio.run(_wait_ready(settings, live, timeout))
    if not ready:
        raise click.ClickException(
            f"the cluster did not become ready in {timeout:.0f}s; see the logs in "
            f"{cluster.logs} (tinykube down --name {settings.name} stops it)")
    _summary(cluster, settings, server, merge, time.monotonic() - start)


@click.command()
@click.option("--name", default="default", show_default=True)
@click.option("--dir", "directory", default=None)
@click.option("--timeout", default=30.0, show_default=True)
@click.option("--delete", is_flag=True, help="Also delete the cluster directory.")
def down(name: str, directory: str | None, timeout: float, delete: bool) -> None:
    """Stop a cluster started by ``tinykube up`` (its objects are kept)."""
    cluster = _cluster_dir(name, directory)
    pid = cluster.supervisor_pid()
    if pid is None:
        _console().print(f"cluster {name!r} is not running")
    else:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        # Not our child, so there is nothing to wait() on: watch the process itself.
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)
            _console().print(f"supervisor {pid} did not stop in {timeout:.0f}s; killed")
        cluster.pid_file.unlink(missing_ok=True)
        _console().print(f"cluster {name!r} stopped")
    if delete and cluster.root.exists():
        import shutil

        shutil.rmtree(cluster.root)
        _console().print(f"deleted {cluster.root}")


@click.command()
@click.option("--name", default="default", show_default=True)
@click.option("--dir", "directory", default=None)
def status(name: str, directory: str | None) -> None:
    """Show each component's health."""
    cluster = _cluster_dir(name, directory)
    if not cluster.settings_file.exists():
        raise click.ClickException(f"no cluster {name!r} (run tinykube up --name {name})")
    settings = ClusterSettings.load(cluster.settings_file)
    from rich.console import Console

    from tinykube.cli import health

    import asyncio

    checks = health.component_checks(settings)
    asyncio.run(health.run_checks(checks))
    pid = cluster.supervisor_pid()
    Console().print(_status_table(checks, 0.0) if pid else f"cluster {name!r} is stopped")
    if pid and not all(check.ok for check in checks):
        raise SystemExit(1)
