"""A ``tinykube up`` cluster in a private home directory, driven with the real kubectl.

For end-to-end tests: each cluster gets its own HOME and TINYKUBE_HOME (so ``up`` merges
its context into that HOME's ``~/.kube/config``), free ports, and is stopped by PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tinykube.testing.processes import command_line

KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
NODE = "tinykube-control-plane"


class UpCluster:
    """A `tinykube up` cluster in a private home directory."""

    def __init__(self, home: Path, name: str = "e2e"):
        self.home = home
        self.name = name
        self.env = {**os.environ, "HOME": str(home), "TINYKUBE_HOME": str(home / ".tinykube")}
        self.root = home / ".tinykube" / name
        self.kubeconfig = self.root / "admin.conf"

    def tinykube(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tinykube", *args, "--name", self.name],
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def kubectl(self, *args: str, check: bool = True) -> str:
        # No --kubeconfig: `up` merged its context into ~/.kube/config and made it current.
        result = subprocess.run([KUBECTL, *args], env=self.env, capture_output=True,
                                text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def wait_for(self, predicate, what: str, timeout: float = 60.0):
        """Re-run a kubectl read until predicate(output) holds (kubectl has no server push
        for these reads)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.5)
        state = self.kubectl("get", "pods,endpoints,nodes", "-A", "-o", "wide", check=False)
        raise AssertionError(f"timed out waiting for {what}; cluster state:\n{state}")

    def supervisor_pid(self) -> int | None:
        pid_file = self.root / "supervisor.pid"
        return int(pid_file.read_text()) if pid_file.exists() else None


def cluster_processes(marker: str) -> list[str]:
    """Command lines of live processes that belong to the cluster directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and marker in (cmdline := command_line(entry.name)):
            found.append(f"{entry.name}: {cmdline}")
    return found
