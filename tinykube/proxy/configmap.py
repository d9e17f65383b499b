"""The `kube-system/kube-proxy` ConfigMap kubeadm writes, so `kubectl get configmap -n
kube-system kube-proxy -o yaml | grep mode` shows the running proxy's configuration."""

from __future__ import annotations

from typing import Any

import yaml

from tinykube.api.errors import ApiError
from tinykube.proxy.config import API_VERSION, KIND, ProxyConfig

NAMESPACE, NAME = "kube-system", "kube-proxy"


def _go_duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms" if seconds < 1 else f"{seconds:g}s"


def kube_proxy_configuration(config: ProxyConfig) -> dict[str, Any]:
    """`config` as a KubeProxyConfiguration document (upstream field names)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "mode": config.mode,
        "clusterCIDR": config.cluster_cidr,
        "hostnameOverride": "",
        "bindAddress": config.bind_address,
        "healthzBindAddress": config.healthz_bind_address,
        "metricsBindAddress": config.metrics_bind_address,
        "clientConnection": {"kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf"},
        "iptables": {
            "masqueradeAll": config.masquerade_all,
            "masqueradeBit": config.masquerade_bit,
            "minSyncPeriod": _go_duration(config.min_sync_period),
            "syncPeriod": _go_duration(config.sync_period),
        },
    }


def kube_proxy_configmap(config: ProxyConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"app": "kube-proxy"}},
        "data": {"config.conf": yaml.safe_dump(kube_proxy_configuration(config), sort_keys=False)},
    }


async def ensure_kube_proxy_configmap(client: Any, config: ProxyConfig) -> dict[str, Any]:
    """Create or update the ConfigMap to describe `config`; returns the stored object."""
    configmaps = client.resource("configmaps")
    desired = kube_proxy_configmap(config)
    try:
        current = await configmaps.get(NAME, namespace=NAMESPACE)
    except ApiError as exc:
        if exc.code != 404:
            raise
        return await configmaps.create(desired, namespace=NAMESPACE)
    if current.get("data") == desired["data"]:
        return current
    current["data"] = desired["data"]
    return await configmaps.update(current)
