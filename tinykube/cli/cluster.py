"""A cluster directory, laid out the way kubeadm lays out a control-plane machine.

``~/.tinykube/<name>/`` holds everything one cluster needs, so ``tinykube up`` can resume it:

    cluster.json        the settings and ports chosen at creation (kept across restarts)
    admin.conf          the admin kubeconfig (also merged into ~/.kube/config)
    store/state.db      the SQLite store (embedded default)
    etcd/               etcd's data dir (``--store etcd``)
    manifests/          static pod manifests for the control plane (the kubelet runs them)
    kubelet/            the kubelet's root dir and its KubeletConfiguration
    logs/               each component's log (also readable with ``kubectl logs``)
    supervisor.pid      the PID of the process that owns the node agents
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

DEFAULT_PORTS: dict[str, int] = {
    "apiserver": 6443,
    "etcd_client": 2379,
    "etcd_peer": 2380,
    "controller_manager": 10257,
    "scheduler": 10259,
    "kubelet": 10250,
    "kubelet_healthz": 10248,
    "proxy_metrics": 10249,
    "proxy_healthz": 10256,
    "dns": 53,
    "dns_metrics": 9153,
    "dns_health": 8080,
    "dns_ready": 8181,
    "dashboard": 8001,
}

CONTROL_PLANE_LABELS = {"tier": "control-plane"}
NODE_NAME_DEFAULT = "tinykube-control-plane"


def tinykube_home() -> Path:
    return Path(os.environ.get("TINYKUBE_HOME", Path.home() / ".tinykube"))


def free_port() -> int:
    """A currently free TCP port on loopback (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ports_in_use(ports: dict[str, int]) -> list[str]:
    """Names of the TCP ports that something already listens on."""
    busy = []
    for name, port in ports.items():
        if name == "dns":  # UDP as well; the DNS server reports its own bind errors
            continue
        with socket.socket() as sock:
            # As the servers themselves do, so that TIME_WAIT leftovers of a stopped
            # cluster do not count as "in use".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                busy.append(f"{name} ({port})")
    return busy


@dataclass
class ClusterSettings:
    """What ``tinykube up`` decided when it created the cluster; reused on resume."""

    name: str = "default"
    node_name: str = NODE_NAME_DEFAULT
    store: str = "sqlite"  # sqlite | etcd
    etcd_servers: str = ""  # an existing etcd cluster instead of a local one
    runtime: str = "process"
    proxy_mode: str = "userspace"
    nodes: int = 0
    hollow_nodes: int = 0
    service_cidr: str = "10.96.0.0/12"
    cluster_cidr: str = "10.244.0.0/16"
    cluster_dns: str = "10.96.0.10"
    cluster_domain: str = "cluster.local"
    node_monitor_grace_period: float = 40.0
    dashboard: bool = False
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))

    @classmethod
    def load(cls, path: Path) -> "ClusterSettings":
        data = json.loads(path.read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        settings = cls(**known)
        settings.ports = {**DEFAULT_PORTS, **settings.ports}
        return settings

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class ClusterDir:
    """Paths inside one cluster directory."""

    root: Path

    @classmethod
    def for_name(cls, name: str) -> "ClusterDir":
        return cls(tinykube_home() / name)

    settings_file = property(lambda self: self.root / "cluster.json")
    kubeconfig = property(lambda self: self.root / "admin.conf")
    store_dir = property(lambda self: self.root / "store")
    etcd_dir = property(lambda self: self.root / "etcd")
    manifests = property(lambda self: self.root / "manifests")
    kubelet_dir = property(lambda self: self.root / "kubelet")
    logs = property(lambda self: self.root / "logs")
    pid_file = property(lambda self: self.root / "supervisor.pid")
    pki = property(lambda self: self.root / "pki")

    @property
    def store_url(self) -> str:
        return f"sqlite://{self.store_dir / 'state.db'}"

    def create(self) -> None:
        for path in (self.root, self.store_dir, self.manifests, self.kubelet_dir, self.logs):
            path.mkdir(parents=True, exist_ok=True)

    def supervisor_pid(self) -> int | None:
        """The supervisor's PID if that process is alive."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if process_alive(pid) else None


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, which nobody may reap here, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return state != "Z"


def tinykube_command(*args: str) -> list[str]:
    """The command line that runs a tinykube subcommand with this interpreter."""
    return [sys.executable, "-m", "tinykube", *args]


# kubeadm's requests for the control-plane static pods (and CoreDNS's Deployment); upstream's
# kube-proxy DaemonSet sets none. The kubelet turns the CPU request into the pod cgroup's
# CPU weight, so the control plane is weighed as upstream's is.
CONTROL_PLANE_REQUESTS = {
    "etcd": {"cpu": "100m", "memory": "100Mi"},
    "kube-apiserver": {"cpu": "250m"},
    "kube-controller-manager": {"cpu": "200m"},
    "kube-scheduler": {"cpu": "100m"},
    "coredns": {"cpu": "100m", "memory": "70Mi"},
}


def _static_pod(component: str, node: str, command: list[str], health_port: int,
                health_scheme: str = "HTTP", health_path: str = "/healthz") -> dict:
    """A control-plane static pod as kubeadm writes them: host network, critical priority,
    kubeadm's resource requests."""
    container: dict = {
        "name": component,
        "image": f"tinykube/{component}:v1.32.0",
        "command": command,
        "livenessProbe": {
            "httpGet": {"host": "127.0.0.1", "port": health_port, "path": health_path,
                        "scheme": health_scheme},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "timeoutSeconds": 15,
            "failureThreshold": 8,
        },
    }
    if component in CONTROL_PLANE_REQUESTS:
        container["resources"] = {"requests": dict(CONTROL_PLANE_REQUESTS[component])}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": component,
            "namespace": "kube-system",
            "labels": {"component": component, **CONTROL_PLANE_LABELS},
            "annotations": {"tinykube.dev/node": node},
        },
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "containers": [container],
        },
    }


def control_plane_manifests(cluster: ClusterDir, settings: ClusterSettings) -> dict[str, dict]:
    """File name -> static pod manifest for every control-plane component."""
    ports = settings.ports
    node = settings.node_name
    kubeconfig = str(cluster.kubeconfig)
    store_url = cluster.store_url
    manifests: dict[str, dict] = {}
    if settings.store == "etcd":
        store_url = settings.etcd_servers or f"etcd://127.0.0.1:{ports['etcd_client']}"
        store_url = store_url if store_url.startswith("etcd://") else f"etcd://{store_url}"
        if not settings.etcd_servers:
            manifests["etcd.yaml"] = _static_pod("etcd", node, [
                "etcd", "--name", node, "--data-dir", str(cluster.etcd_dir),
                "--listen-client-urls", f"http://127.0.0.1:{ports['etcd_client']}",
                "--advertise-client-urls", f"http://127.0.0.1:{ports['etcd_client']}",
                "--listen-peer-urls", f"http://127.0.0.1:{ports['etcd_peer']}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{ports['etcd_peer']}",
                "--initial-cluster", f"{node}=http://127.0.0.1:{ports['etcd_peer']}",
                "--listen-metrics-urls", "", "--snapshot-count", "10000",
            ], ports["etcd_client"], health_path="/health")
    manifests["kube-apiserver.yaml"] = _static_pod("kube-apiserver", node, tinykube_command(
        "apiserver", "--store", store_url, "--bind-address", "127.0.0.1",
        "--secure-port", str(ports["apiserver"]),
        "--service-cluster-ip-range", settings.service_cidr,
    ), ports["apiserver"], health_path="/livez")
    manifests["kube-controller-manager.yaml"] = _static_pod(
        "kube-controller-manager", node, tinykube_command(
            "controller-manager", "--kubeconfig", kubeconfig, "--leader-elect=true",
            "--secure-port", str(ports["controller_manager"]),
            "--cluster-cidr", settings.cluster_cidr,
            "--pv-host-path-dir", str(cluster.root / "volumes"),
            "--root-ca-file", str(cluster.pki / "ca.crt"),
            "--node-monitor-grace-period", f"{settings.node_monitor_grace_period:g}s",
        ), ports["controller_manager"], health_scheme="HTTPS")
    manifests["kube-scheduler.yaml"] = _static_pod("kube-scheduler", node, tinykube_command(
        "scheduler", "--kubeconfig", kubeconfig, "--leader-elect",
        "--secure-port", str(ports["scheduler"]),
    ), ports["scheduler"])
    manifests["kube-proxy.yaml"] = _static_pod("kube-proxy", node, tinykube_command(
        "proxy", "--kubeconfig", kubeconfig, "--mode", settings.proxy_mode,
        "--hostname-override", node,
        "--healthz-port", str(ports["proxy_healthz"]),
        "--metrics-port", str(ports["proxy_metrics"]),
    ), ports["proxy_healthz"])
    manifests["coredns.yaml"] = _static_pod("coredns", node, tinykube_command(
        "dns", "--kubeconfig", kubeconfig, "--bind-address", "127.0.0.1",
        "--port", str(ports["dns"]), "--metrics-port", str(ports["dns_metrics"]),
        "--health-port", str(ports["dns_health"]), "--ready-port", str(ports["dns_ready"]),
    ), ports["dns_health"], health_path="/health")
    if settings.dashboard:
        manifests["kubernetes-dashboard.yaml"] = _static_pod(
            "kubernetes-dashboard", node, tinykube_command(
                "dashboard", "--kubeconfig", kubeconfig, "--bind-address", "127.0.0.1",
                "--port", str(ports["dashboard"])), ports["dashboard"])
    manifests["coredns.yaml"]["metadata"]["labels"] = {"k8s-app": "kube-dns"}
    manifests["kube-proxy.yaml"]["metadata"]["labels"] = {"k8s-app": "kube-proxy"}
    # The cluster CA is each component's trust root (SSL_CERT_FILE): they only talk to
    # the cluster, and loading one certificate instead of the system bundle shortens
    # every component's start-up.
    for manifest in manifests.values():
        manifest["spec"]["containers"][0]["env"] = [
            {"name": "SSL_CERT_FILE", "value": str(cluster.pki / "ca.crt")}]
    return manifests


def write_manifests(cluster: ClusterDir, settings: ClusterSettings) -> list[Path]:
    """(Re)write the static pod manifests; any other manifest in the directory is
    removed (and the kubelet stops its pod)."""
    wanted = control_plane_manifests(cluster, settings)
    for existing in cluster.manifests.glob("*.yaml"):
        if existing.name not in wanted:
            existing.unlink()
    written = []
    for file_name, manifest in wanted.items():
        path = cluster.manifests / file_name
        text = yaml.safe_dump(manifest, sort_keys=False)
        if not path.exists() or path.read_text() != text:  # unchanged: the pod keeps running
            path.write_text(text)
        written.append(path)
    return written


def kubelet_configuration(cluster: ClusterDir, settings: ClusterSettings) -> dict:
    """The KubeletConfiguration the node agent runs with (upstream's shape)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "clusterDNS": [settings.cluster_dns],
        "clusterDomain": settings.cluster_domain,
        "maxPods": 110,
        "podPidsLimit": 4096,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": settings.ports["kubelet_healthz"],
        "port": settings.ports["kubelet"],
        "readOnlyPort": 0,
        "cgroupDriver": "cgroupfs",
        "staticPodPath": str(cluster.manifests),
        # Renewed every quarter of this; the node monitor's grace period matches it, as
        # upstream's defaults do (40 s).
        "nodeLeaseDurationSeconds": max(4, int(settings.node_monitor_grace_period)),
        "authentication": {"webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
    }


def spawn_supervisor(cluster: ClusterDir) -> int:
    """Start the supervisor (``tinykube.cli.supervisor``) detached from the terminal;
    returns its PID. Here rather than in that module, so that ``up`` starts it without
    importing asyncio first."""
    with (cluster.logs / "supervisor.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tinykube.cli.supervisor", str(cluster.root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            close_fds=True,
        )
    cluster.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def ensure_bytecode() -> None:
    """Write the missing or out-of-date ``.pyc`` files of the tinykube package.

    Every process of a cluster is a new interpreter importing tinykube; with an editable
    install nothing compiled the package at install time, and with PYTHONDONTWRITEBYTECODE
    set (or a tree just edited) each of them would compile the same modules again, in
    memory, on every start. Checking costs a few milliseconds when all are current; a
    package directory that cannot be written is left alone.
    """
    import compileall

    package = Path(__file__).resolve().parents[1]
    try:
        compileall.compile_dir(str(package), quiet=2, workers=1)
    except OSError:
        pass
