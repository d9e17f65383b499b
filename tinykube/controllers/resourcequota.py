"""The resourcequota controller: keep each ResourceQuota's ``status.used`` current.

For every resource named in ``spec.hard`` the namespace's usage is computed from the
informer caches: object counts (``pods``, ``services``, ``configmaps``, ``secrets``,
``persistentvolumeclaims``, ``replicationcontrollers``, ``resourcequotas``,
``services.loadbalancers``, ``services.nodeports``, ``count/<resource>[.<group>]``),
compute (``requests.cpu``/``cpu``, ``requests.memory``/``memory``, ``limits.cpu``,
``limits.memory``, ``requests.ephemeral-storage``, extended ``requests.<name>``) summed
over non-terminal pods, and storage (``requests.storage``). Scopes Terminating,
NotTerminating, BestEffort and NotBestEffort filter the pods counted. The API server's
ResourceQuota admission reads ``status.used``; any change in the namespace requeues its
quotas, and a periodic full resync (``resource_quota_sync_period``) repairs drift.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tinykube.api import kinds, meta, pods, quantity
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext, namespace_index

Obj = dict[str, Any]
NAME = "resourcequota-controller"

COUNTED = {"pods": ("pods", None), "services": ("services", None),
           "configmaps": ("configmaps", None), "secrets": ("secrets", None),
           "persistentvolumeclaims": ("persistentvolumeclaims", None),
           "replicationcontrollers": ("replicationcontrollers", None),
           "resourcequotas": ("resourcequotas", None)}
WATCHED = [("pods", None), ("services", None), ("configmaps", None), ("secrets", None),
           ("persistentvolumeclaims", None), ("replicationcontrollers", None),
           ("deployments", "apps"), ("replicasets", "apps"), ("statefulsets", "apps"),
           ("daemonsets", "apps"), ("jobs", "batch"), ("cronjobs", "batch")]


def pod_in_scopes(pod: Obj, scopes: list[str]) -> bool:
    for scope in scopes:
        terminating = util.spec(pod).get("activeDeadlineSeconds") is not None
        best_effort = pods.qos_class(pod) == "BestEffort"
        if scope == "Terminating" and not terminating:
            return False
        if scope == "NotTerminating" and terminating:
            return False
        if scope == "BestEffort" and not best_effort:
            return False
        if scope == "NotBestEffort" and best_effort:
            return False
    return True


def compute_usage(name: str, objects: dict[str, list[Obj]], scopes: list[str]) -> Fraction:
    """Usage of one quota resource from the namespace's objects (by resource name)."""
    live_pods = [p for p in objects.get("pods", []) if not pods.is_terminal(p)
                 and pod_in_scopes(p, scopes)]
    if name in ("pods", "count/pods"):
        return Fraction(len(live_pods))
    if name in COUNTED:
        return Fraction(len(objects.get(COUNTED[name][0], [])))
    if name == "services.loadbalancers":
        return Fraction(sum(1 for s in objects.get("services", [])
                            if util.spec(s).get("type") == "LoadBalancer"))
    if name == "services.nodeports":
        return Fraction(sum(1 for s in objects.get("services", [])
                            if util.spec(s).get("type") in ("NodePort", "LoadBalancer")
                            for p in util.spec(s).get("ports") or [] if p.get("nodePort")))
    if name == "requests.storage":
        return sum((quantity.parse_quantity(((util.spec(c).get("resources") or {})
                                             .get("requests") or {}).get("storage", 0))
                    for c in objects.get("persistentvolumeclaims", [])), Fraction(0))
    if name.startswith("count/"):
        return Fraction(len(objects.get(name[len("count/"):], [])))
    if name.startswith("limits."):
        key = name[len("limits."):]
        return sum((pods.pod_limits(p).get(key, Fraction(0)) for p in live_pods), Fraction(0))
    key = name[len("requests."):] if name.startswith("requests.") else name
    return sum((pods.pod_requests(p, include_pods=False).get(key, Fraction(0))
                for p in live_pods), Fraction(0))


def format_like(value: Fraction, hard: str) -> str:
    """Usage in the notation of the hard limit (``500m`` next to ``1``, ``128Mi``...)."""
    fmt = quantity.detect_format(str(hard))
    return quantity.format_quantity(value, fmt)


class ResourceQuotaController(BaseController):
    """Recomputes status.used of the quotas of a namespace whenever its content changes."""

    def __init__(self, ctx: ControllerContext, resync: float = 300.0) -> None:
        super().__init__(ctx, NAME, 2)
        self.resync = resync
        self.client = ctx.client
        self.quota_informer = ctx.informers.informer("resourcequotas")
        namespace_index(self.quota_informer)
        self.quotas = ctx.client.resource("resourcequotas")
        self.quota_informer.add_handlers(on_add=lambda q: self.enqueue(meta.key(q)),
                                         on_update=self._quota_updated)
        self.informers: dict[str, Any] = {}
        for resource, group in WATCHED:
            informer = ctx.informers.informer(resource, group)
            namespace_index(informer)
            info = kinds.resolve(resource, group)
            name = info.resource if not info.group else f"{info.resource}.{info.group}"
            self.informers[name] = informer
            informer.add_handlers(on_add=self._content_changed,
                                  on_update=lambda old, new: self._content_changed(new),
                                  on_delete=self._content_changed)

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        if util.spec(old) != util.spec(new) or util.status(new).get("hard") != \
                util.spec(new).get("hard"):
            self.enqueue(meta.key(new))

    def _content_changed(self, obj: Obj) -> None:
        for quota in self.quota_informer.cache.by_index("namespace", meta.namespace(obj)):
            self.enqueue(meta.key(quota))

    async def _objects(self, namespace: str, hard: dict[str, Any]) -> dict[str, list[Obj]]:
        out = {name: informer.cache.by_index("namespace", namespace)
               for name, informer in self.informers.items()}
        out["resourcequotas"] = self.quota_informer.cache.by_index("namespace", namespace)
        for name in hard:
            if not name.startswith("count/") or name[len("count/"):] in out:
                continue
            resource, _, group = name[len("count/"):].partition(".")
            try:
                listing = await self.client.resource(resource, group or None).list(
                    namespace=namespace)
            except (KeyError, ApiError):
                continue
            out[name[len("count/"):]] = listing.get("items") or []
        return out

    async def sync(self, key: str) -> None:
        quota = self.quota_informer.cache.get(key)
        if quota is None:
            return
        hard = dict(util.spec(quota).get("hard") or {})
        scopes = list(util.spec(quota).get("scopes") or [])
        objects = await self._objects(meta.namespace(quota), hard)
        used = {}
        for name, limit in hard.items():
            try:
                used[name] = format_like(compute_usage(name, objects, scopes), limit)
            except ValueError:
                continue  # an unparseable hard value: validation's concern
        status = {"hard": hard, "used": used}
        if util.status(quota) != status:
            with ignore_not_found():
                await self.quotas.update({**quota, "status": status}, subresource="status")
        if self.resync > 0:
            self.enqueue_after(key, self.resync)


def new_resourcequota_controller(ctx: ControllerContext) -> ResourceQuotaController:
    return ResourceQuotaController(ctx, resync=ctx.config.resource_quota_sync_period)
