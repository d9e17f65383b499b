"""The namespace controller: empty a Terminating namespace, then finalize it.

When a namespace has a deletionTimestamp and still carries the ``kubernetes`` finalizer,
every namespaced kind is listed and each object deleted (Background propagation); the
remaining objects are counted with fresh lists (never the caches), and the namespace's
status conditions report progress with upstream's types, reasons and messages. Once
nothing is left the ``kubernetes`` finalizer is removed through ``namespaces/<ns>/finalize``
and the API server deletes the namespace. Deletions in a terminating namespace re-trigger
the sync through the shared informers, so no polling is needed while pods terminate.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from tinykube.api import kinds, meta
from tinykube.api.errors import ApiError, ignore_not_found, qualified

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext

Obj = dict[str, Any]
NAME = "namespace-controller"
FINALIZER = "kubernetes"
# When content remains, look again after this long even if no event arrives (upstream
# requeues after its estimate of the longest graceful termination, too).
RECHECK_SECONDS = 5.0

CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure",
                   "NamespaceDeletionGroupVersionParsingFailure",
                   "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
                   "NamespaceFinalizersRemaining")


def namespaced_resources() -> list[kinds.ResourceInfo]:
    """Each namespaced kind once per storage location (core and events.k8s.io share)."""
    seen: set[str] = set()
    out = []
    for info in kinds.RESOURCES:
        if not info.namespaced or not {"list", "delete"} <= set(info.verbs):
            continue
        prefix = info.storage_prefix()
        if prefix in seen:
            continue
        seen.add(prefix)
        out.append(info)
    return out


def content_conditions(remaining: dict[str, int], finalizers: dict[str, int],
                       failures: list[str]) -> list[Obj]:
    """The five status conditions upstream's namespaced resources deleter reports."""
    def cond(type_: str, failed: bool, reason: str, message: str) -> Obj:
        return {"type": type_, "status": "True" if failed else "False",
                "lastTransitionTime": meta.now(), "reason": reason, "message": message}

    conds = [
        cond("NamespaceDeletionDiscoveryFailure", False, "ResourcesDiscovered",
             "All resources successfully discovered"),
        cond("NamespaceDeletionGroupVersionParsingFailure", False, "ParsedGroupVersions",
             "All legacy kube types successfully parsed"),
    ]
    if failures:
        conds.append(cond("NamespaceDeletionContentFailure", True, "ContentDeletionFailed",
                          "Failed to delete all resource types, "
                          f"{len(failures)} remaining: {', '.join(failures)}"))
    else:
        conds.append(cond("NamespaceDeletionContentFailure", False, "ContentDeleted",
                          "All content successfully deleted, may be waiting on finalization"))
    if remaining:
        detail = ", ".join(f"{gr} has {n} resource instances"
                           for gr, n in sorted(remaining.items()))
        conds.append(cond("NamespaceContentRemaining", True, "SomeResourcesRemain",
                          f"Some resources are remaining: {detail}"))
    else:
        conds.append(cond("NamespaceContentRemaining", False, "ContentRemoved",
                          "All content successfully removed"))
    if finalizers:
        detail = ", ".join(f"{f} in {n} resource instances"
                           for f, n in sorted(finalizers.items()))
        conds.append(cond("NamespaceFinalizersRemaining", True, "SomeFinalizersRemain",
                          f"Some content in the namespace has finalizers remaining: {detail}"))
    else:
        conds.append(cond("NamespaceFinalizersRemaining", False, "ContentHasNoFinalizers",
                          "All content-preserving finalizers finished"))
    return conds


def merge_conditions(old: list[Obj], new: list[Obj]) -> list[Obj]:
    """New conditions, keeping lastTransitionTime where status did not change."""
    by_type = {c.get("type"): c for c in old}
    out = []
    for cond in new:
        prev = by_type.get(cond["type"])
        if prev is not None and prev.get("status") == cond["status"]:
            cond = {**cond, "lastTransitionTime": prev.get("lastTransitionTime")}
        out.append(cond)
    others = [c for c in old if c.get("type") not in CONDITION_TYPES]
    return others + out


class NamespaceController(BaseController):
    """Deletes a terminating namespace's content and finalizes it."""

    def __init__(self, ctx: ControllerContext, workers: int = 10) -> None:
        super().__init__(ctx, NAME, workers)
        self.client = ctx.client
        self.ns_informer = ctx.informers.informer("namespaces")
        self.namespaces = ctx.client.resource("namespaces")
        self.ns_informer.add_handlers(on_add=self._ns_changed,
                                      on_update=lambda old, new: self._ns_changed(new))
        self.resources = namespaced_resources()
        for info in self.resources:
            if info.resource == "events":
                continue  # events never block; their churn would only add wake-ups
            ctx.informers.informer(info.resource, info.group).add_handlers(
                on_delete=self._content_deleted)

    def _ns_changed(self, ns: Obj) -> None:
        if meta.deletion_timestamp(ns) is not None:
            self.enqueue(meta.name(ns))

    def _content_deleted(self, obj: Obj) -> None:
        ns = self.ns_informer.cache.get(meta.namespace(obj))
        if ns is not None and meta.deletion_timestamp(ns) is not None:
            self.enqueue(meta.name(ns))

    async def sync(self, name: str) -> None:
        ns = self.ns_informer.cache.get(name)
        if ns is None or meta.deletion_timestamp(ns) is None:
            return
        if FINALIZER not in (util.spec(ns).get("finalizers") or []):
            return
        failures, remaining, finalizers = await self._delete_all_content(name)
        await self._update_conditions(ns, content_conditions(remaining, finalizers, failures))
        if failures or remaining:
            self.enqueue_after(name, RECHECK_SECONDS)
            return
        await self._finalize(ns)

    async def _delete_all_content(self, namespace: str
                                  ) -> tuple[list[str], dict[str, int], dict[str, int]]:
        results = await asyncio.gather(*(self._delete_kind(info, namespace)
                                         for info in self.resources))
        failures: list[str] = []
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for info, (failed, left, fins) in zip(self.resources, results):
            group_resource = qualified(info.group, info.resource)
            if failed:
                failures.append(group_resource)
            if left:
                remaining[group_resource] = left
            for fin, n in fins.items():
                finalizers[fin] = finalizers.get(fin, 0) + n
        return failures, remaining, finalizers

    async def _delete_kind(self, info: kinds.ResourceInfo, namespace: str
                           ) -> tuple[bool, int, dict[str, int]]:
        """Delete every object of one kind; (failed, left over, finalizer counts)."""
        rc = self.client.resource(info.resource, info.group or None)
        try:
            items = (await rc.list(namespace=namespace)).get("items") or []
        except ApiError as err:
            if err.code in (404, 405):
                return False, 0, {}
            return True, 0, {}
        failed = False
        for obj in items:
            if meta.deletion_timestamp(obj) is not None:
                continue
            try:
                await rc.delete(meta.name(obj), namespace=namespace,
                                propagation_policy="Background")
            except ApiError as err:
                if err.code not in (404, 409):
                    failed = True
        if not items:
            return failed, 0, {}
        try:
            left = (await rc.list(namespace=namespace)).get("items") or []
        except ApiError:
            return True, 0, {}
        fins: dict[str, int] = {}
        for obj in left:
            for fin in meta.finalizers(obj):
                fins[fin] = fins.get(fin, 0) + 1
        return failed, len(left), fins

    async def _update_conditions(self, ns: Obj, conditions: list[Obj]) -> None:
        status = util.status(ns)
        merged = merge_conditions(status.get("conditions") or [], conditions)
        if merged == (status.get("conditions") or []) and status.get("phase") == "Terminating":
            return
        body = copy.deepcopy(ns)
        body["status"] = {**status, "phase": "Terminating", "conditions": merged}
        try:
            await self.namespaces.update(body, subresource="status")
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _finalize(self, ns: Obj) -> None:
        try:
            fresh = await self.namespaces.get(meta.name(ns))
        except ApiError as err:
            if err.code == 404:
                return
            raise
        spec = dict(util.spec(fresh))
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        body = {**fresh, "spec": spec}
        with ignore_not_found():
            await self.namespaces.update(body, subresource="finalize")


def new_namespace_controller(ctx: ControllerContext) -> NamespaceController:
    return NamespaceController(ctx, workers=ctx.config.concurrent_namespace_syncs)
