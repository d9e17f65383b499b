"""KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1 and v1beta3), defaulted.

The file shape is upstream's: ``profiles`` (each a ``schedulerName`` with ``plugins``
enabled/disabled per extension point, ``multiPoint`` included, and ``pluginConfig`` args),
``leaderElection``, ``percentageOfNodesToScore``, ``podInitialBackoffSeconds`` and
``podMaxBackoffSeconds``. A ConfigMap carrying the file under ``data`` (as the tutorial
stores it) is accepted too. Durations are Go durations (``15s``, ``1m30s``, ``500ms``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinykube.scheduler.framework import EXTENSION_POINTS
from tinykube.scheduler.registry import DEFAULT_PLUGINS, REGISTRY

API_VERSIONS = ("kubescheduler.config.k8s.io/v1", "kubescheduler.config.k8s.io/v1beta3")
KIND = "KubeSchedulerConfiguration"
DEFAULT_SCHEDULER_NAME = "default-scheduler"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """The scheduler configuration is invalid; the message names the offending field."""


def parse_duration(value: Any, field_name: str) -> float:
    """A Go duration string (or a number of seconds) in seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{field_name}: invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass
class PluginRef:
    name: str
    weight: int = 0


@dataclass
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER_NAME
    plugins: dict[str, list[PluginRef]] = field(default_factory=dict)
    plugin_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    percentage_of_nodes_to_score: int | None = None

    def all_plugin_names(self) -> list[str]:
        return list(dict.fromkeys(r.name for refs in self.plugins.values() for r in refs))


@dataclass
class LeaderElection:
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    resource_lock: str = "leases"
    resource_name: str = "kube-scheduler"
    resource_namespace: str = "kube-system"


@dataclass
class KubeSchedulerConfiguration:
    profiles: list[Profile] = field(default_factory=lambda: [default_profile()])
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0


def default_profile(name: str = DEFAULT_SCHEDULER_NAME) -> Profile:
    return Profile(name, {point: [PluginRef(n, w) for n, w in refs]
                          for point, refs in DEFAULT_PLUGINS.items()})


def _merge_point(point: str, defaults: list[PluginRef], section: dict[str, Any],
                 path: str) -> list[PluginRef]:
    """Defaults minus ``disabled`` (``*`` = all), then ``enabled`` (re-weighting defaults)."""
    disabled = {d.get("name") for d in section.get("disabled") or ()}
    out = [] if "*" in disabled else [PluginRef(r.name, r.weight) for r in defaults
                                       if r.name not in disabled]
    for i, item in enumerate(section.get("enabled") or ()):
        name = item.get("name")
        if name not in REGISTRY:
            raise ConfigError(f'{path}.enabled[{i}].name: plugin "{name}" does not exist')
        weight = int(item.get("weight") or 0)
        existing = next((r for r in out if r.name == name), None)
        if existing is not None:
            existing.weight = weight or existing.weight
        else:
            default_weight = 1 if point == "score" else 0
            out.append(PluginRef(name, weight or default_weight))
    return out


def _expand_multi_point(section: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``multiPoint`` enables a plugin at every extension point it implements."""
    multi = section.get("multiPoint") or {}
    extra: dict[str, dict[str, Any]] = {}
    for item in multi.get("enabled") or ():
        plugin_cls = REGISTRY.get(item.get("name"))
        if plugin_cls is None:
            raise ConfigError(f'plugins.multiPoint: plugin "{item.get("name")}" does not exist')
        probe = plugin_cls({}, None)  # factories only store the handle
        for point, method in EXTENSION_POINTS.items():
            if hasattr(probe, method):
                extra.setdefault(point, {"enabled": []})["enabled"].append(item)
    for item in multi.get("disabled") or ():
        for point in EXTENSION_POINTS:
            extra.setdefault(point, {}).setdefault("disabled", []).append(item)
    return extra


def parse_profile(raw: dict[str, Any], index: int, percentage: int) -> Profile:
    path = f"profiles[{index}]"
    name = raw.get("schedulerName") or DEFAULT_SCHEDULER_NAME
    plugins_raw = raw.get("plugins") or {}
    if not isinstance(plugins_raw, dict):
        raise ConfigError(f"{path}.plugins: must be a mapping")
    multi = _expand_multi_point(plugins_raw)
    profile = Profile(name)
    for point in EXTENSION_POINTS:
        section = dict(plugins_raw.get(point) or {})
        if point in multi:
            section["enabled"] = [*(multi[point].get("enabled") or ()),
                                  *(section.get("enabled") or ())]
            section["disabled"] = [*(multi[point].get("disabled") or ()),
                                   *(section.get("disabled") or ())]
        defaults = [PluginRef(n, w) for n, w in DEFAULT_PLUGINS.get(point, ())]
        profile.plugins[point] = _merge_point(point, defaults, section,
                                              f"{path}.plugins.{point}")
    for i, item in enumerate(raw.get("pluginConfig") or ()):
        pname = item.get("name")
        if pname not in REGISTRY:
            raise ConfigError(f'{path}.pluginConfig[{i}].name: plugin "{pname}" does not exist')
        profile.plugin_config[pname] = item.get("args") or {}
    pct = raw.get("percentageOfNodesToScore")
    profile.percentage_of_nodes_to_score = int(pct) if pct is not None else percentage
    if not profile.plugins.get("bind"):
        raise ConfigError(f"{path}.plugins.bind: at least one bind plugin is needed")
    return profile


def parse_config(data: dict[str, Any]) -> KubeSchedulerConfiguration:
    """Validate and default a decoded KubeSchedulerConfiguration."""
    if data.get("kind") == "ConfigMap":
        payload = next(iter((data.get("data") or {}).values()), None)
        if payload is None:
            raise ConfigError("ConfigMap has no data holding a KubeSchedulerConfiguration")
        data = yaml.safe_load(payload) or {}
    api_version = data.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ConfigError(f'apiVersion "{api_version}" is not one of {", ".join(API_VERSIONS)}')
    if data.get("kind") != KIND:
        raise ConfigError(f'kind "{data.get("kind")}" is not {KIND}')
    cfg = KubeSchedulerConfiguration()
    pct = data.get("percentageOfNodesToScore")
    if pct is not None:
        if not 0 <= int(pct) <= 100:
            raise ConfigError("percentageOfNodesToScore: Invalid value: must be in 0..100")
        cfg.percentage_of_nodes_to_score = int(pct)
    raw_profiles = data.get("profiles") or [{}]
    cfg.profiles = [parse_profile(p or {}, i, cfg.percentage_of_nodes_to_score)
                    for i, p in enumerate(raw_profiles)]
    names = [p.scheduler_name for p in cfg.profiles]
    if len(set(names)) != len(names):
        raise ConfigError("profiles: Duplicate value: schedulerName must be unique")
    le = data.get("leaderElection") or {}
    cfg.leader_election = LeaderElection(
        leader_elect=bool(le.get("leaderElect", True)),
        lease_duration=parse_duration(le.get("leaseDuration", "15s"),
                                      "leaderElection.leaseDuration"),
        renew_deadline=parse_duration(le.get("renewDeadline", "10s"),
                                      "leaderElection.renewDeadline"),
        retry_period=parse_duration(le.get("retryPeriod", "2s"), "leaderElection.retryPeriod"),
        resource_lock=le.get("resourceLock", "leases"),
        resource_name=le.get("resourceName", "kube-scheduler"),
        resource_namespace=le.get("resourceNamespace", "kube-system"),
    )
    if cfg.leader_election.resource_lock != "leases":
        raise ConfigError('leaderElection.resourceLock: Unsupported value: only "leases"')
    if cfg.leader_election.leader_elect and not (
            cfg.leader_election.lease_duration > cfg.leader_election.renew_deadline
            > cfg.leader_election.retry_period):
        raise ConfigError("leaderElection: need leaseDuration > renewDeadline > retryPeriod")
    cfg.pod_initial_backoff_seconds = float(data.get("podInitialBackoffSeconds", 1))
    cfg.pod_max_backoff_seconds = float(data.get("podMaxBackoffSeconds", 10))
    if cfg.pod_initial_backoff_seconds <= 0 or \
            cfg.pod_max_backoff_seconds < cfg.pod_initial_backoff_seconds:
        raise ConfigError("podMaxBackoffSeconds must be >= podInitialBackoffSeconds > 0")
    return cfg


def load_config(path: str | Path) -> KubeSchedulerConfiguration:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read scheduler config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"scheduler config {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"scheduler config {path} is not a mapping")
    try:
        return parse_config(data)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"scheduler config {path}: {exc}") from None
