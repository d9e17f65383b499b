"""`ProxyConfig` and loading upstream's KubeProxyConfiguration file
(`kubeproxy.config.k8s.io/v1alpha1`) onto it."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # kept out of `tinykube proxy`'s start-up, before /healthz answers
    from tinykube.proxy.model import ServicePort

API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"
MODES = ("iptables", "nftables", "userspace")


class ConfigError(ValueError):
    """A configuration file or flag value kube-proxy cannot use."""


@dataclass
class ProxyConfig:
    """Everything a `Proxy` needs; field names follow KubeProxyConfiguration's."""

    mode: str = "iptables"
    kubeconfig: str | None = None
    client: Any = None  # a tinykube.client.rest.Client; wins over kubeconfig
    node_name: str = field(default_factory=socket.gethostname)
    cluster_cidr: str = ""
    healthz_bind_address: str = "127.0.0.1:10256"
    metrics_bind_address: str = "127.0.0.1:10249"
    min_sync_period: float = 1.0
    sync_period: float = 30.0
    masquerade_all: bool = False
    masquerade_bit: int = 14
    chain_prefix: str = "KUBE-"  # tests use their own so they never touch real KUBE-* chains
    nftables_table: str = "kube-proxy"  # nftables mode: the `ip` table it owns
    iptables_netns: str | None = None  # run iptables/nft inside this network namespace
    dry_run: bool = False  # iptables mode: compute rules but never apply them (hollow nodes)
    clear_conntrack: bool = True
    bind_address: str = "127.0.0.1"  # userspace mode: where service ports listen
    userspace_addresses: Callable[[ServicePort], list[tuple[str, int]]] | None = None
    udp_idle_timeout: float = 1.0
    publish_configmap: bool = False  # keep kube-system/kube-proxy describing this config

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f'invalid proxy mode "{self.mode}": must be one of {", ".join(MODES)}')
        if not 0 <= self.masquerade_bit <= 31:
            raise ConfigError(f"iptables.masqueradeBit: Invalid value: {self.masquerade_bit}: must be within the range [0, 31]")
        if not _CHAIN_PREFIX.fullmatch(self.chain_prefix):
            raise ConfigError(f'invalid chain prefix "{self.chain_prefix}": want 1-8 of A-Z, 0-9, "-", ending in "-"')
        if self.min_sync_period < 0 or self.sync_period <= 0:
            raise ConfigError("iptables.syncPeriod must be greater than 0 and minSyncPeriod must not be negative")


_CHAIN_PREFIX = re.compile(r"[A-Za-z0-9-]{0,7}-")  # KUBE-SEP-<16> must fit in 28 characters
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(value: str | int | float) -> float:
    """A Go duration string (`1s`, `500ms`, `1m30s`) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if text in ("0", ""):
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f'invalid duration "{value}"')
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _bind(address: str, default_port: int) -> str:
    """KubeProxyConfiguration addresses may omit the port (`0.0.0.0`)."""
    if not address:
        return ""
    return address if ":" in address else f"{address}:{default_port}"


def apply_file(config: ProxyConfig, path: str) -> ProxyConfig:
    """Overlay a KubeProxyConfiguration file's settings on `config`."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"failed to read config file {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a {KIND} object")
    if doc.get("kind", KIND) != KIND or doc.get("apiVersion", API_VERSION) != API_VERSION:
        raise ConfigError(f'{path}: no kind "{doc.get("kind")}" is registered for version "{doc.get("apiVersion")}"')
    changes: dict[str, Any] = {}
    if doc.get("mode"):
        changes["mode"] = doc["mode"]
    if doc.get("clusterCIDR"):
        changes["cluster_cidr"] = doc["clusterCIDR"]
    if doc.get("hostnameOverride"):
        changes["node_name"] = doc["hostnameOverride"]
    if doc.get("healthzBindAddress"):
        changes["healthz_bind_address"] = _bind(doc["healthzBindAddress"], 10256)
    if doc.get("metricsBindAddress"):
        changes["metrics_bind_address"] = _bind(doc["metricsBindAddress"], 10249)
    if doc.get("bindAddress"):
        changes["bind_address"] = doc["bindAddress"]
    kubeconfig = (doc.get("clientConnection") or {}).get("kubeconfig")
    if kubeconfig:
        changes["kubeconfig"] = kubeconfig
    ipt = doc.get("iptables") or {}
    if "minSyncPeriod" in ipt:
        changes["min_sync_period"] = parse_duration(ipt["minSyncPeriod"])
    if "syncPeriod" in ipt:
        changes["sync_period"] = parse_duration(ipt["syncPeriod"])
    if "masqueradeAll" in ipt:
        changes["masquerade_all"] = bool(ipt["masqueradeAll"])
    if "masqueradeBit" in ipt:
        changes["masquerade_bit"] = int(ipt["masqueradeBit"])
    result = replace(config, **changes)
    result.validate()
    return result


def split_host_port(address: str) -> tuple[str, int]:
    """`host:port` (port 0 picks a free one)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f'invalid bind address "{address}": want host:port')
    return host.strip("[]") or "0.0.0.0", int(port)
