"""Builders of Service and EndpointSlice objects for tests and benchmarks (no pytest needed)."""

from __future__ import annotations

from typing import Any

Object = dict[str, Any]


def service(name: str, cluster_ip: str, ports: list[Object] | None = None, namespace: str = "default",
            **spec: Any) -> Object:
    """A Service; `ports` defaults to one TCP port `http` 80 -> 8080."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": ports if ports is not None else [
                {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
            **spec,
        },
    }


def endpoint_slice(service_name: str, addresses: list[str], ports: list[Object] | None = None,
                   namespace: str = "default", name: str | None = None,
                   ready: bool | list[bool] = True, node_name: str | None = None) -> Object:
    """An EndpointSlice of `service_name` with one endpoint per address."""
    readiness = ready if isinstance(ready, list) else [ready] * len(addresses)
    endpoints = []
    for ip, is_ready in zip(addresses, readiness):
        ep: Object = {"addresses": [ip], "conditions": {"ready": is_ready, "serving": is_ready, "terminating": False}}
        if node_name:
            ep["nodeName"] = node_name
        endpoints.append(ep)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service_name}-abcde",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }
