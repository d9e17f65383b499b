"""KubeletConfig, and loading a ``kubelet.config.k8s.io/v1beta1`` KubeletConfiguration file.

Field names and defaults are upstream's (maxPods 110, podPidsLimit -1, port 10250,
healthzPort 10248 on 127.0.0.1, nodeStatusUpdateFrequency 10s, clusterDomain
cluster.local, eventRecordQPS 50, eventBurst 100); tinykube supports the cgroupfs driver
only, since the hosts it targets run no systemd.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

log = logging.getLogger(__name__)

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"


class ConfigError(Exception):
    """The KubeletConfiguration is invalid; the message says which field and why."""


@dataclass
class KubeletConfig:
    node_name: str
    runtime: str = "process"  # "process" | "fake"
    kubeconfig: str | None = None
    client: Any = None  # a tinykube.client.rest.Client; overrides kubeconfig
    root_dir: str = "/var/lib/tinykube/kubelet"
    pod_manifest_path: str | None = None
    address: str = "127.0.0.1"
    port: int = 10250
    healthz_bind_address: str = "127.0.0.1"
    healthz_port: int = 10248
    node_ip: str = "127.0.0.1"
    node_labels: dict[str, str] = field(default_factory=dict)
    register_with_taints: list[dict] = field(default_factory=list)
    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    max_pods: int = 110
    pod_pids_limit: int = -1
    pod_cidr: str = ""  # used when the Node has no spec.podCIDR; default 10.244.0.0/24
    service_cidr: str = "10.96.0.0/12"
    bridge: str = "tkb0"
    cgroup_parent: str = "tinykube"
    cgroup_driver: str = "cgroupfs"
    node_status_update_frequency: float = 10.0
    lease_duration_seconds: int = 40
    crashloop_base_backoff: float = 10.0
    crashloop_max_backoff: float = 300.0
    capacity: dict[str, str] = field(default_factory=dict)  # overrides of detected capacity
    isolate: bool | None = None  # None: namespaces and cgroups when root
    remove_bridge_on_stop: bool = False
    read_only_port: int = 0
    event_record_qps: float = 50.0  # Event writes per second past the burst (0: no limit)
    event_burst: int = 100
    fake_exit_codes: dict[str, int] = field(default_factory=dict)


DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
UNITS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_duration(value: str | int | float) -> float:
    """Go's duration syntax (``10s``, ``1m30s``, ``500ms``) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if not text or DURATION.sub("", text):
        raise ConfigError(f'invalid duration "{value}"')
    return sum(float(n) * UNITS[u] for n, u in DURATION.findall(text))


def _check_kind(doc: dict) -> None:
    if doc.get("kind") != KIND:
        raise ConfigError(f'kind must be {KIND}, got "{doc.get("kind", "")}"')
    if doc.get("apiVersion") != API_VERSION:
        raise ConfigError(f'no kind "{KIND}" is registered for version "{doc.get("apiVersion", "")}"')


# KubeletConfiguration field -> (KubeletConfig attribute, converter)
FIELDS: dict[str, tuple[str, Any]] = {
    "clusterDNS": ("cluster_dns", lambda v: [str(x) for x in v or []]),
    "clusterDomain": ("cluster_domain", str),
    "maxPods": ("max_pods", int),
    "podPidsLimit": ("pod_pids_limit", int),
    "healthzBindAddress": ("healthz_bind_address", str),
    "healthzPort": ("healthz_port", int),
    "readOnlyPort": ("read_only_port", int),
    "address": ("address", str),
    "port": ("port", int),
    "staticPodPath": ("pod_manifest_path", str),
    "podCIDR": ("pod_cidr", str),
    "nodeStatusUpdateFrequency": ("node_status_update_frequency", parse_duration),
    "cgroupDriver": ("cgroup_driver", str),
    "cgroupRoot": ("cgroup_parent", lambda v: str(v).strip("/") or "tinykube"),
    "eventRecordQPS": ("event_record_qps", float),
    "eventBurst": ("event_burst", int),
}
# accepted and not acted on (tinykube has no webhook authn/authz on the kubelet API, no
# image GC, no eviction manager)
ACCEPTED = {"authentication", "authorization", "evictionHard", "evictionSoft", "imageGCHighThresholdPercent",
            "imageGCLowThresholdPercent", "serializeImagePulls", "rotateCertificates", "serverTLSBootstrap",
            "tlsCertFile", "tlsPrivateKeyFile", "failSwapOn", "syncFrequency", "fileCheckFrequency",
            "containerRuntimeEndpoint", "resolvConf", "runtimeRequestTimeout", "streamingConnectionIdleTimeout",
            "volumeStatsAggPeriod", "staticPodURL", "systemReserved", "kubeReserved", "enforceNodeAllocatable",
            "logging", "shutdownGracePeriod", "shutdownGracePeriodCriticalPods", "featureGates",
            "nodeLeaseDurationSeconds", "hairpinMode", "cpuManagerPolicy", "memorySwap", "kind", "apiVersion"}


def apply_configuration(cfg: KubeletConfig, doc: dict) -> list[str]:
    """Apply a KubeletConfiguration document onto ``cfg``; returns warnings for unknown fields."""
    _check_kind(doc)
    warnings = []
    for key, value in doc.items():
        if key in FIELDS:
            attr, convert = FIELDS[key]
            try:
                setattr(cfg, attr, convert(value))
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{key}: Invalid value: {value!r}: {exc}") from None
        elif key == "nodeLeaseDurationSeconds":
            cfg.lease_duration_seconds = int(value)
        elif key not in ACCEPTED:
            warnings.append(f'unknown field "{key}"')
    validate(cfg)
    return warnings


def validate(cfg: KubeletConfig) -> None:
    if cfg.cgroup_driver not in ("cgroupfs",):
        if cfg.cgroup_driver == "systemd":
            raise ConfigError('cgroupDriver: Unsupported value: "systemd": tinykube needs the cgroupfs driver '
                              '(there is no systemd on this host); set cgroupDriver: cgroupfs')
        raise ConfigError(f'cgroupDriver: Unsupported value: "{cfg.cgroup_driver}": supported values: "cgroupfs"')
    if cfg.event_record_qps < 0:
        raise ConfigError(f"eventRecordQPS: Invalid value: {cfg.event_record_qps:g}: must be greater than or equal to 0")
    if cfg.event_burst < 0:
        raise ConfigError(f"eventBurst: Invalid value: {cfg.event_burst}: must be greater than or equal to 0")
    if cfg.max_pods <= 0:
        raise ConfigError(f"maxPods: Invalid value: {cfg.max_pods}: must be greater than 0")
    for port_field in ("port", "healthz_port"):
        port = getattr(cfg, port_field)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{port_field}: Invalid value: {port}: must be between 0 and 65535, inclusive")
    if cfg.runtime not in ("process", "fake"):
        raise ConfigError(f'--runtime: Unsupported value: "{cfg.runtime}": supported values: "process", "fake"')


def load_file(cfg: KubeletConfig, path: str) -> list[str]:
    """Read a KubeletConfiguration YAML file into ``cfg``."""
    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except OSError as exc:
        raise ConfigError(f"failed to read kubelet config file \"{path}\", error: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"failed to decode kubelet config file \"{path}\": {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"kubelet config file \"{path}\" is not a KubeletConfiguration object")
    return apply_configuration(cfg, doc)
