"""The node supervisor: the one long-lived process ``tinykube up`` leaves behind.

It plays the part of the machine's init system in a kubeadm cluster: it starts the node
agents (the kubelet, which runs the control plane as static pods, plus any extra kubelets
and hollow nodes), restarts an agent that dies, and on SIGTERM (``tinykube down``) shuts
them down so that no process of the cluster outlives it. Everything else about the cluster
is the kubelet's business.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# asyncio is imported once the node agents are started (``supervise``): the kubelet is the
# first step of the cluster's start-up, and this process's imports are in its way.
if TYPE_CHECKING:
    import asyncio

from tinykube import aio
from tinykube.cli.cluster import (ClusterDir, ClusterSettings, spawn_supervisor,  # noqa: F401
                                  tinykube_command, write_manifests)

STOP_GRACE_SECONDS = 20.0
RESTART_BACKOFF_MAX = 10.0


@dataclass
class Agent:
    """One supervised child process."""

    name: str
    command: list[str]
    log: Path
    process: asyncio.subprocess.Process | StartedProcess | None = None
    restarts: int = 0


class StartedProcess:
    """An agent started with ``subprocess.Popen`` before the event loop ran, with what the
    supervisor uses of ``asyncio.subprocess.Process``."""

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def terminate(self) -> None:
        self.popen.terminate()

    def kill(self) -> None:
        self.popen.kill()

    async def wait(self) -> int:
        import asyncio

        return await asyncio.to_thread(self.popen.wait)


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
        import asyncio

        self.cluster = cluster
        self.settings = settings
        self.agents = agents
        self.proxy_mode = settings.proxy_mode
        self.env = agent_env(cluster)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        if _EARLY_SIGNALS:  # asked to stop while the agents were being started
            self._stopping.set()
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
        import asyncio

        with (self.cluster.logs / "supervisor.log").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *tinykube_command("proxy", "--cleanup"), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log)
            try:
                await aio.wait_for(process.wait(), STOP_GRACE_SECONDS)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()

    async def _keep_running(self, agent: Agent) -> None:
        """Start the agent (unless ``supervise`` did); restart it with back-off whenever it
        exits."""
        import asyncio

        backoff = 0.5
        started = isinstance(agent.process, StartedProcess)
        while not self._stopping.is_set():
            if not started:
                with agent.log.open("ab") as log:
                    agent.process = await asyncio.create_subprocess_exec(
                        *agent.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                        env=self.env)
            started = False
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
        import asyncio

        process = agent.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await aio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


def agent_env(cluster: ClusterDir) -> dict[str, str]:
    # As for the control plane's static pods: the cluster CA is the agents' trust root.
    return {**os.environ, "SSL_CERT_FILE": str(cluster.pki / "ca.crt")}


_EARLY_SIGNALS: list[int] = []


def _note_signal(signum: int, _frame) -> None:
    _EARLY_SIGNALS.append(signum)


def supervise(cluster: ClusterDir) -> None:
    """Entry point of the detached supervisor process."""
    # Until the event loop handles them: a stop asked for meanwhile must still stop the
    # agents started below (a Python-level handler, unlike a blocked signal, is not
    # inherited by them).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _note_signal)
    settings = ClusterSettings.load(cluster.settings_file)
    cluster.pid_file.write_text(f"{os.getpid()}\n")
    from tinykube.client.pki import ensure_ca

    ensure_ca(cluster.pki)  # before the controller manager publishes it
    # Before the kubelet starts: it reads the directory once, then watches it for changes.
    write_manifests(cluster, settings)
    agents = node_agents(cluster, settings)
    env = agent_env(cluster)
    for agent in agents:
        with agent.log.open("ab") as log:
            agent.process = StartedProcess(subprocess.Popen(
                agent.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env))
    import asyncio

    try:
        asyncio.run(Supervisor(cluster, settings, agents).run())
    finally:
        if cluster.supervisor_pid() in (None, os.getpid()):
            cluster.pid_file.unlink(missing_ok=True)
    sys.exit(0)


if __name__ == "__main__":
    supervise(ClusterDir(Path(sys.argv[1])))
