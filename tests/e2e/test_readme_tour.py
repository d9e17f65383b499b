"""The README's five-minute tour, run line by line as a newcomer would type it.

Each line of the tour's code block runs through bash in a private HOME, with `kubectl`
being the real kubectl 1.32 and `tinykube` this checkout's command. Lines whose result
arrives asynchronously (an event, a routed request) are re-run until their expected
output appears, within a bound.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32"
STANDARD_PORTS = (6443, 10248, 10249, 10250, 10256, 10257, 10259, 8080, 8181, 9153)

# Lines of the tour whose output is asserted (pattern), each retried until it matches.
EXPECTED = {
    "kubectl get pods -n kube-system": r"kube-apiserver-tinykube-control-plane\s+1/1\s+Running",
    "kubectl get nodes": r"tinykube-control-plane\s+Ready",
    "kubectl exec deployment/web -- cat /etc/hostname": r"^web-",
    "kubectl port-forward deployment/web": r"hello from web-",
    "kubectl get endpoints web": r"web\s+(\S+:8080,){2}\S+:8080",
    "kubectl top pods": r"web-\S+\s+\d+m\s+\d+Mi",
    "curl": r"hello from web-",
    "kubectl get events --field-selector reason=FailedScheduling":
        r"FailedScheduling.*node\(s\) were unschedulable",
}

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists(KUBECTL), reason="kubectl 1.32 binary not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the tour's pod networking needs root"),
]


def tour_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A five-minute tour", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    lines = []
    for raw in block.strip().splitlines():
        line = re.sub(r"\s+# .*$", "", raw).strip()
        if line:
            lines.append(line)
    return lines


def _ports_free() -> bool:
    for port in STANDARD_PORTS:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.fixture
def shell(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(KUBECTL)
    wrapper = bin_dir / "tinykube"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tinykube "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path / "home"),
           "TINYKUBE_HOME": str(tmp_path / "home" / ".tinykube"),
           "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(line: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=180)

    yield run
    run("tinykube down")


def _expected_for(line: str) -> str | None:
    for prefix, pattern in EXPECTED.items():
        if line.startswith(prefix):
            return pattern
    return None


def test_readme_tour_runs_as_written(shell):
    lines = tour_lines()
    assert lines[0] == "tinykube up" and lines[-1].startswith("tinykube down")
    for line in lines:
        command = line
        if line == "tinykube up" and not _ports_free():
            command = "tinykube up --free-ports"  # something else holds the standard ports
        pattern = _expected_for(line)
        deadline = time.monotonic() + 60
        while True:
            result = shell(command)
            output = result.stdout + result.stderr
            done = result.returncode == 0 and (
                pattern is None or re.search(pattern, result.stdout, re.M))
            if done or time.monotonic() > deadline or pattern is None:
                break
            time.sleep(1)
        assert result.returncode == 0, f"{line!r} failed:\n{output}"
        if pattern is not None:
            assert re.search(pattern, result.stdout, re.M), f"{line!r} printed:\n{output}"
