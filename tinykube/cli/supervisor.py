"""The node supervisor: the one long-lived process ``tinykube up`` leaves behind.

It plays the part of the machine's init system in a kubeadm cluster: it starts the node
agents (the kubelet, which runs the control plane as static pods, plus any extra kubelets
and hollow nodes), restarts an agent that dies, and on SIGTERM (``tinykube down``) shuts
them down so that no process of the cluster outlives it. Everything else about the cluster
is the kubelet's business.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tinykube.cli.cluster import (ClusterDir, ClusterSettings, tinykube_command,
                                  write_manifests)

STOP_GRACE_SECONDS = 20.0
RESTART_BACKOFF_MAX = 10.0


@dataclass
class Agent:
    """One supervised child process."""

    name: str
    command: list[str]
    log: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0


def node_agents(cluster: ClusterDir, settings: ClusterSettings) -> list[Agent]:
    """The processes a node machine runs: its kubelet(s) and hollow nodes."""
    kubeconfig = str(cluster.kubeconfig)
    agents = [Agent("kubelet", tinykube_command(
        "kubelet", "--kubeconfig", kubeconfig,
        "--config", str(cluster.kubelet_dir / "config.yaml"),
        "--node-name", settings.node_name, "--runtime", settings.runtime,
        "--root-dir", str(cluster.kubelet_dir), "--shutdown-pods-on-exit",
        "--node-labels", "node-role.kubernetes.io/control-plane=",
    ), cluster.logs / "kubelet.log")]
    for index in range(1, settings.nodes + 1):
        name = f"{settings.node_name}-worker{index}"
        root = cluster.root / "workers" / name
        agents.append(Agent(f"kubelet-{name}", tinykube_command(
            "kubelet", "--kubeconfig", kubeconfig, "--node-name", name,
            "--runtime", settings.runtime, "--root-dir", str(root),
            "--port", str(settings.ports["kubelet"] + 100 * index),
            "--healthz-port", str(settings.ports["kubelet_healthz"] + 100 * index),
            "--cluster-dns", settings.cluster_dns, "--shutdown-pods-on-exit",
        ), cluster.logs / f"kubelet-{name}.log"))
    if settings.hollow_nodes:
        agents.append(Agent("hollow-nodes", tinykube_command(
            "hollow-nodes", "--kubeconfig", kubeconfig, "--count", str(settings.hollow_nodes),
            "--lease-interval", f"{min(10.0, settings.node_monitor_grace_period / 4):g}",
        ), cluster.logs / "hollow-nodes.log"))
    return agents


class Supervisor:
    """Keeps the node agents running until told to stop."""

    def __init__(self, cluster: ClusterDir, settings: ClusterSettings, agents: list[Agent]):
        self.cluster = cluster
        self.settings = settings
        self.agents = agents
        self.proxy_mode = settings.proxy_mode
        # As for the control plane's static pods: the cluster CA is the agents' trust root.
        self.env = {**os.environ, "SSL_CERT_FILE": str(cluster.pki / "ca.crt")}
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        watchers = [asyncio.create_task(self._keep_running(agent)) for agent in self.agents]
        try:
            await self._stopping.wait()
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await asyncio.gather(*(self._stop(agent) for agent in self.agents))
            if self.proxy_mode in ("iptables", "nftables"):
                await self._remove_proxy_rules()

    async def _remove_proxy_rules(self) -> None:
        """kube-proxy leaves its rules in the kernel when it stops (as upstream's does);
        a cluster that is shut down removes them, as ``kube-proxy --cleanup`` would."""
        with (self.cluster.logs / "supervisor.log").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *tinykube_command("proxy", "--cleanup"), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()

    async def _keep_running(self, agent: Agent) -> None:
        """Start the agent; restart it with back-off whenever it exits."""
        backoff = 0.5
        while not self._stopping.is_set():
            with agent.log.open("ab") as log:
                agent.process = await asyncio.create_subprocess_exec(
                    *agent.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    env=self.env)
            code = await agent.process.wait()
            if self._stopping.is_set():
                return
            agent.restarts += 1
            with agent.log.open("a") as log:
                log.write(f"supervisor: {agent.name} exited with {code}; restarting\n")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX)

    async def _stop(self, agent: Agent) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        process = agent.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


def spawn_supervisor(cluster: ClusterDir) -> int:
    """Start the supervisor detached from the terminal; returns its PID."""
    log = (cluster.logs / "supervisor.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tinykube.cli.supervisor", str(cluster.root)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        close_fds=True,
    )
    cluster.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def supervise(cluster: ClusterDir) -> None:
    """Entry point of the detached supervisor process."""
    settings = ClusterSettings.load(cluster.settings_file)
    cluster.pid_file.write_text(f"{os.getpid()}\n")
    from tinykube.client.pki import ensure_ca

    ensure_ca(cluster.pki)  # before the controller manager publishes it
    write_manifests(cluster, settings)
    try:
        asyncio.run(Supervisor(cluster, settings, node_agents(cluster, settings)).run())
    finally:
        if cluster.supervisor_pid() in (None, os.getpid()):
            cluster.pid_file.unlink(missing_ok=True)
    sys.exit(0)


if __name__ == "__main__":
    supervise(ClusterDir(Path(sys.argv[1])))
