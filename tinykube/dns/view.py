"""A `ClusterView` over informer caches, indexed for the lookups DNS makes per query."""

from __future__ import annotations

from typing import Any

from tinykube.api import meta

Object = dict[str, Any]


def service_cluster_ips(svc: Object) -> list[str]:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if ip and ip != "None"]


def namespace_of(obj: Object) -> list[str]:
    return [meta.namespace(obj)]


def slice_owner(slice_obj: Object) -> list[str]:
    key = meta.slice_service_key(slice_obj)
    return [key] if key else []


def slice_addresses(slice_obj: Object) -> list[str]:
    return [ip for ep in slice_obj.get("endpoints") or [] for ip in ep.get("addresses") or []]


SERVICE_INDEXES = {"clusterIP": service_cluster_ips, "namespace": namespace_of}
SLICE_INDEXES = {"service": slice_owner, "address": slice_addresses}


class CacheView:
    """Answers `ClusterView` questions from two caches with the indexes above."""

    def __init__(self, services: Any, slices: Any) -> None:
        self._services = services
        self._slices = slices

    def service(self, namespace: str, name: str) -> Object | None:
        return self._services.get(f"{namespace}/{name}")

    def slices(self, namespace: str, name: str) -> list[Object]:
        return self._slices.by_index("service", f"{namespace}/{name}")

    def services_by_ip(self, ip: str) -> list[Object]:
        return self._services.by_index("clusterIP", ip)

    def slices_by_address(self, ip: str) -> list[Object]:
        return self._slices.by_index("address", ip)

    def has_namespace(self, namespace: str) -> bool:
        return bool(self._services.by_index("namespace", namespace))


class StaticView(CacheView):
    """A view over fixed lists of objects (unit tests, tools)."""

    def __init__(self, services: list[Object], slices: list[Object]) -> None:
        super().__init__(_ListCache(services, SERVICE_INDEXES), _ListCache(slices, SLICE_INDEXES))


class _ListCache:
    def __init__(self, objs: list[Object], indexes: dict[str, Any]) -> None:
        self._objs = {meta.key(o): o for o in objs}
        self._indexes = indexes

    def get(self, key: str) -> Object | None:
        return self._objs.get(key)

    def by_index(self, name: str, value: str) -> list[Object]:
        fn = self._indexes[name]
        return [o for o in self._objs.values() if value in fn(o)]
