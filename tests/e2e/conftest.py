"""Helpers for the client-compatibility suites: the real kubectl against the test server.

``kubectl`` is parametrized over the pinned binaries (the oldest and the newest on the
machine), each run with its own kubeconfig, discovery cache and HOME so that runs never
see each other's state or the user's ``~/.kube``. Every call is awaitable and runs the
binary off the event loop, so the in-process API server keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")
KUBECTL_VERSIONS = ("1.27", "1.33")
DEFAULT_TIMEOUT = 60.0


def kubectl_binary(version: str) -> Path:
    return KUBECTL_DIR / f"kubectl.{version}"


class KubectlError(AssertionError):
    """kubectl exited non-zero where the test expected success."""


@dataclass
class Kubectl:
    """One pinned kubectl binary bound to one kubeconfig."""

    binary: Path
    kubeconfig: str
    home: Path
    version: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def _env(self) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
               "KUBECONFIG": self.kubeconfig, "KUBECTL_COMMAND_HEADERS": "false"}
        env.update(self.env)
        return env

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), f"--kubeconfig={self.kubeconfig}",
                f"--cache-dir={self.home / 'cache'}", *args]

    def run_sync(self, *args: str, input: str | None = None, check: bool = True,
                 timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        """Run kubectl to completion, capturing stdout and stderr as text."""
        proc = subprocess.run(self.command(*args), input=input, capture_output=True,
                              text=True, timeout=timeout, env=self._env())
        if check and proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} exited {proc.returncode}\n"
                               f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
        return proc

    async def run(self, *args: str, input: str | None = None, check: bool = True,
                  timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        return await asyncio.to_thread(self.run_sync, *args, input=input, check=check,
                                       timeout=timeout)

    async def fails(self, *args: str, input: str | None = None,
                    timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        """Run kubectl expecting a non-zero exit (bad input); returns the result."""
        proc = await self.run(*args, input=input, check=False, timeout=timeout)
        assert proc.returncode != 0, f"kubectl {' '.join(args)} succeeded:\n{proc.stdout}"
        return proc

    async def json(self, *args: str) -> Any:
        return json.loads((await self.run(*args, "-o", "json")).stdout)

    async def yaml(self, *args: str) -> Any:
        return yaml.safe_load((await self.run(*args, "-o", "yaml")).stdout)

    def popen(self, *args: str) -> subprocess.Popen:
        """Start a long-running kubectl (``get -w``); the caller stops it by PID."""
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self._env())

    # Output helpers, reachable from the fixture (test modules cannot import conftest).
    @staticmethod
    def table(output: str) -> list[list[str]]:
        return table(output)

    @staticmethod
    def header(output: str) -> list[str]:
        return header(output)

    @staticmethod
    async def read_until(proc: subprocess.Popen, predicate, timeout: float) -> list[str]:
        return await read_until(proc, predicate, timeout)

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        stop(proc)


async def read_until(proc: subprocess.Popen, predicate, timeout: float) -> list[str]:
    """Lines of ``proc``'s stdout up to the first one ``predicate`` accepts.

    Fails after ``timeout`` seconds; the caller still owns (and stops) the process.
    """
    lines: list[str] = []

    def read() -> list[str]:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if predicate(lines[-1]):
                return lines
        return lines

    try:
        await asyncio.wait_for(asyncio.to_thread(read), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        raise AssertionError(f"no matching line within {timeout}s; got {lines}") from None
    if not lines or not predicate(lines[-1]):
        raise AssertionError(f"stream ended without a matching line: {lines}\n"
                             f"stderr: {proc.stderr.read() if proc.stderr else ''}")
    return lines


def stop(proc: subprocess.Popen) -> None:
    """Stop a kubectl started with ``popen`` (by its PID) and reap it."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def table(output: str) -> list[list[str]]:
    """``kubectl get`` output split into rows of whitespace-separated cells."""
    return [line.split() for line in output.strip().splitlines()]


def header(output: str) -> list[str]:
    return output.strip().splitlines()[0].split()


@pytest.fixture(params=KUBECTL_VERSIONS, ids=[f"kubectl{v}" for v in KUBECTL_VERSIONS])
def kubectl_for(request, tmp_path):
    """``kubectl_for(running_apiserver)``: a pinned kubectl for a server the test started."""
    binary = kubectl_binary(request.param)
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")

    def make(running) -> Kubectl:
        home = tmp_path / f"home-{request.param}-{running.port}"
        home.mkdir()
        return Kubectl(binary, str(running.kubeconfig), home, request.param)

    return make


@pytest.fixture
def kubectl(kubectl_for, apiserver) -> Kubectl:
    """A pinned kubectl (each version in turn) for the ``apiserver`` fixture's server."""
    return kubectl_for(apiserver)


@pytest.fixture
def examples() -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / "apiserver"
