"""ResourceQuota: refuse creates that would exceed a namespace's quotas, and charge them.

For each ResourceQuota of the namespace this plugin computes what the new object adds to
the resources its ``status.hard`` names (what the resourcequota controller published), checks ``status.used + delta <= hard`` and then
writes the new ``status.used`` with a compare-and-swap, so that concurrent creates can
never oversubscribe a quota (kube-apiserver's quota admission does the same). The
resourcequota controller recomputes ``status.used`` from the objects and repairs any
drift, e.g. after deletions.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Any

from tinykube.api import errors, meta, pods, quantity
from tinykube.api.kinds import ResourceInfo, lookup
from tinykube.apiserver.admission import CREATE, Attributes
from tinykube.apiserver.objects import Objects

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

QUOTAS = lookup("", "v1", "resourcequotas")
CHARGE_ATTEMPTS = 10
COUNTED = frozenset({"pods", "services", "configmaps", "secrets", "persistentvolumeclaims",
                     "replicationcontrollers", "resourcequotas"})
COMPUTE_PREFIXES = ("requests.", "limits.")
COMPUTE_BARE = frozenset({"cpu", "memory", "ephemeral-storage"})


def _count_name(info: ResourceInfo) -> str:
    return f"count/{info.resource}" + (f".{info.group}" if info.group else "")


def _pod_in_scopes(pod: dict, scopes: list[str]) -> bool:
    terminating = (pod.get("spec") or {}).get("activeDeadlineSeconds") is not None
    best_effort = pods.qos_class(pod) == "BestEffort"
    checks = {"Terminating": terminating, "NotTerminating": not terminating,
              "BestEffort": best_effort, "NotBestEffort": not best_effort}
    return all(checks.get(scope, True) for scope in scopes)


def usage_of(info: ResourceInfo, obj: dict, resource: str) -> Fraction | None:
    """What creating ``obj`` adds to quota resource ``resource`` (None: unrelated)."""
    if resource == _count_name(info) or (resource in COUNTED and resource == info.resource):
        return Fraction(1)
    if info.resource == "pods":
        if resource.startswith("limits."):
            return pods.pod_limits(obj).get(resource[len("limits."):], Fraction(0))
        if resource.startswith("requests.") or resource in COMPUTE_BARE:
            key = resource[len("requests."):] if resource.startswith("requests.") else resource
            return pods.pod_requests(obj, include_pods=False).get(key, Fraction(0))
        return None
    if info.resource == "services":
        spec = obj.get("spec") or {}
        if resource == "services.loadbalancers":
            return Fraction(1 if spec.get("type") == "LoadBalancer" else 0)
        if resource == "services.nodeports":
            if spec.get("type") not in ("NodePort", "LoadBalancer"):
                return Fraction(0)
            return Fraction(len(spec.get("ports") or []))
    if info.resource == "persistentvolumeclaims" and resource == "requests.storage":
        requests = ((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}
        return quantity.parse_quantity(requests.get("storage", 0))
    return None


def _missing_compute(obj: dict, resources: list[str]) -> list[str]:
    """Compute resources a quota tracks that the pod's containers leave unspecified."""
    missing = []
    for resource in resources:
        if resource.startswith(COMPUTE_PREFIXES) or resource in COMPUTE_BARE:
            if "." in resource:
                kind, _, key = resource.partition(".")
            else:
                kind, key = "requests", resource
            if key not in COMPUTE_BARE:
                continue
            for container in (obj.get("spec") or {}).get("containers") or []:
                values = (container.get("resources") or {}).get(kind) or {}
                if key not in values:
                    missing.append(resource)
                    break
    return sorted(set(missing))


def _fmt(value: Fraction, like: str) -> str:
    return quantity.format_quantity(value, quantity.detect_format(str(like)))


class ResourceQuota:
    name = "ResourceQuota"

    def __init__(self, server: "APIServer"):
        self.server = server

    async def validate(self, attrs: Attributes) -> None:
        if (attrs.operation != CREATE or attrs.subresource or attrs.obj is None
                or not attrs.resource.namespaced or not attrs.namespace):
            return
        cached = self.server.watch_cache.list(QUOTAS, attrs.namespace)
        for quota_name in [meta.name(c.obj) for c in cached]:
            await self._charge(attrs, quota_name)

    async def _charge(self, attrs: Attributes, quota_name: str) -> None:
        objects = Objects(self.server.store, QUOTAS)
        for _ in range(CHARGE_ATTEMPTS):
            found = await objects.get_or_none(attrs.namespace, quota_name)
            if found is None:
                return
            quota, revision = found
            spec = quota.get("spec") or {}
            # as upstream, enforce what the controller has published in status.hard: a
            # quota it has not seen yet constrains nothing
            hard: dict[str, Any] = (quota.get("status") or {}).get("hard") or {}
            scopes = list(spec.get("scopes") or [])
            if scopes and (attrs.resource.resource != "pods"
                           or not _pod_in_scopes(attrs.obj, scopes)):
                return
            deltas = {r: d for r in sorted(hard)
                      if (d := usage_of(attrs.resource, attrs.obj, r)) is not None}
            if not deltas:
                return
            if attrs.resource.resource == "pods":
                missing = _missing_compute(attrs.obj, list(deltas))
                if missing:
                    raise errors.forbidden(attrs.resource, attrs.name,
                                           f"failed quota: {quota_name}: must specify "
                                           f"{','.join(missing)}")
            used: dict[str, Any] = dict((quota.get("status") or {}).get("used") or {})
            unknown = [r for r in deltas if r not in used]
            if unknown:
                raise errors.forbidden(attrs.resource, attrs.name,
                                       f"status unknown for quota: {quota_name}, resources: "
                                       f"{','.join(unknown)}")
            new_used = {r: quantity.parse_quantity(used[r]) + d for r, d in deltas.items()}
            over = [r for r in deltas if new_used[r] > quantity.parse_quantity(hard[r])]
            if over:
                raise errors.forbidden(attrs.resource, attrs.name, (
                    f"exceeded quota: {quota_name}, "
                    f"requested: {','.join(f'{r}={_fmt(deltas[r], hard[r])}' for r in over)}, "
                    f"used: {','.join(f'{r}={used[r]}' for r in over)}, "
                    f"limited: {','.join(f'{r}={hard[r]}' for r in over)}"))
            if attrs.dry_run:
                return
            status = dict(quota.get("status") or {})
            status["used"] = {**used, **{r: _fmt(v, hard[r]) for r, v in new_used.items()}}
            quota["status"] = status
            try:
                await objects.update(attrs.namespace, quota_name, quota, revision)
                return
            except errors.ApiError as err:
                if err.reason != "Conflict":
                    raise
        raise errors.server_timeout(QUOTAS, "update", 1)
