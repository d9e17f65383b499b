"""Real etcd for tests and benchmarks: single members and 3-member clusters on loopback.

Each member runs in its own temporary data directory with free client and peer ports on
127.0.0.1. Readiness is taken from etcd's own log line
("serving client traffic ...") read as it is written, not guessed with sleeps. Members are stopped by PID.

Fixtures: ``etcd_server`` (session scope; yields ``etcd://127.0.0.1:PORT``) and
``etcd_cluster`` (session scope; a 3-member ``EtcdCluster`` whose ``.url`` lists every
member). Both skip when the etcd binary is absent.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from tinykube.testing.processes import stop_process

ETCD_BINARY = os.environ.get("TINYKUBE_ETCD", "/usr/bin/etcd")
#: Log lines that mean "accepting client requests" (zap logger; older capnslog wording).
READY_MARKERS = ("serving client traffic", "ready to serve client requests")
START_TIMEOUT = 30.0


def etcd_available() -> bool:
    return os.access(ETCD_BINARY, os.X_OK)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class EtcdTLS:
    """A CA and one certificate for 127.0.0.1 that etcd serves and clients present."""

    ca: Path
    cert: Path
    key: Path

    def url_query(self) -> str:
        return f"cacert={self.ca}&cert={self.cert}&key={self.key}"


def make_tls(directory: Path) -> EtcdTLS:
    """Write a throw-away CA and a server+client certificate for 127.0.0.1 (etcd's PKI)."""
    from tinykube.client import pki  # cryptography is imported only by the tests using TLS

    ca = pki.new_ca("etcd-ca")
    tls = EtcdTLS(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    directory.mkdir(parents=True, exist_ok=True)
    tls.ca.write_bytes(ca.cert_pem)
    pki.serving_cert("etcd", ["127.0.0.1", "localhost"], ca, client_auth=True).write(
        tls.cert, tls.key)
    return tls


@dataclass
class EtcdMember:
    """One etcd process; ``start()`` returns once it serves clients, ``stop()`` kills it."""

    name: str
    data_dir: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    initial_cluster: str = ""
    tls: EtcdTLS | None = None
    process: subprocess.Popen[str] | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _log_thread: threading.Thread | None = None

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        """The tinykube store URL (with the client certificate when TLS is on)."""
        query = f"?{self.tls.url_query()}" if self.tls else ""
        return f"etcd://{self.endpoint}{query}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def launch(self) -> None:
        """Start the process without waiting (a cluster starts all members, then waits)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"etcd member {self.name} already runs")
        cluster = self.initial_cluster or f"{self.name}={self.peer_url}"
        state = "existing" if (self.data_dir / "member").exists() else "new"
        args = [
            ETCD_BINARY,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", cluster,
            "--initial-cluster-state", state,
            "--initial-cluster-token", "tinykube-test",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]
        if self.tls is not None:
            args += ["--cert-file", str(self.tls.cert), "--key-file", str(self.tls.key),
                     "--trusted-ca-file", str(self.tls.ca), "--client-cert-auth"]
        self._ready.clear()
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        self._log_thread = threading.Thread(
            target=self._follow_log, args=(self.process,), name=f"etcd-log-{self.name}",
            daemon=True,
        )
        self._log_thread.start()

    def _follow_log(self, process: subprocess.Popen[str]) -> None:
        """Copy etcd's log to a file and flag readiness when etcd says so."""
        assert process.stderr is not None
        with open(self.log_path, "a") as out:
            for line in process.stderr:
                out.write(line)
                if any(marker in line for marker in READY_MARKERS):
                    self._ready.set()
                    out.flush()
        self._ready.set()  # exited: wake waiters, who then see the process is gone

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        if not self._ready.wait(timeout) or self.process is None or self.process.poll() is not None:
            tail = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            self.stop()
            raise RuntimeError(f"etcd member {self.name} did not become ready:\n{tail}")

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def stop(self, sig: int = signal.SIGKILL) -> None:
        """Kill the process by PID and reap it; the data directory stays for a restart."""
        proc = self.process
        if proc is None:
            return
        stop_process(proc, sig)
        if self._log_thread is not None:
            self._log_thread.join(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class EtcdCluster:
    """``size`` members on loopback, started together; ``url`` names every member."""

    def __init__(self, base_dir: Path, size: int = 3):
        names = [f"member{i}" for i in range(size)]
        self.members = [EtcdMember(n, base_dir / n) for n in names]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = initial

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(m.endpoint for m in self.members)

    def start(self) -> None:
        for member in self.members:
            member.launch()
        try:
            for member in self.members:
                member.wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for member in self.members:
            member.stop()


class EtcdServer(EtcdMember):
    """A single-member etcd in its own temporary directory, removed by ``cleanup()``."""

    def __init__(self, tls: bool = False) -> None:
        self._tmp = tempfile.mkdtemp(prefix="tinykube-etcd-")
        super().__init__("default", Path(self._tmp) / "data",
                         tls=make_tls(Path(self._tmp) / "pki") if tls else None)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)


def _require_etcd() -> None:
    if not etcd_available():
        pytest.skip(f"etcd binary not found at {ETCD_BINARY}")


@pytest.fixture(scope="session")
def etcd_process() -> Iterator[EtcdServer]:
    """The session's single etcd member, as a handle (for tests that stop and restart it)."""
    _require_etcd()
    server = EtcdServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def etcd_server(etcd_process: EtcdServer) -> str:
    """``etcd://127.0.0.1:PORT`` of a real single-member etcd shared by the session."""
    if not etcd_process.running:
        etcd_process.start()
    return etcd_process.url


@pytest.fixture(scope="session")
def etcd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """A real 3-member etcd cluster on loopback; ``.url`` is ``etcd://h:p,h:p,h:p``."""
    _require_etcd()
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd-cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
