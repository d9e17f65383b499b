"""The garbage collector: delete objects whose owners are gone, honour deletion policies.

The ownership graph is read from the informer caches of every kind the API serves (each
cache indexed by uid and by owner uid), so it is rebuilt for free after a restart and
stays level-triggered. Three situations are handled, as upstream's garbagecollector.go:

- Background: a dependent whose every owner is gone (404, or a different uid under the
  name) is deleted; owners that still exist keep it, and dangling references next to a
  live owner are removed from it.
- Foreground: an owner being deleted with the ``foregroundDeletion`` finalizer first has
  its dependents deleted; once no dependent with ``blockOwnerDeletion`` is left, the
  finalizer is removed and the API server finishes the deletion.
- Orphan: an owner with the ``orphan`` finalizer has its ownerReference removed from every
  dependent, then the finalizer is removed.

Absence of an owner is confirmed with a live GET before anything is deleted, so a lagging
cache can never cause a deletion.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from tinykube.api import kinds, meta
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers.base import BaseController, ControllerContext, owner_uid_index

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAME = "garbage-collector-controller"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
# Kinds the collector never tracks (upstream ignores events too: they are never owners
# worth tracking and are by far the most numerous objects).
IGNORED = {("", "events"), ("events.k8s.io", "events")}


@dataclass(frozen=True)
class ObjectRef:
    """One object as the work queue names it."""

    group: str
    resource: str
    namespace: str
    name: str
    uid: str


def tracked_resources() -> list[kinds.ResourceInfo]:
    """Every listable, watchable, deletable kind (one per group/resource)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for info in kinds.RESOURCES:
        ident = (info.group, info.resource)
        if ident in seen or ident in IGNORED:
            continue
        if not {"list", "watch", "delete"} <= set(info.verbs):
            continue
        seen.add(ident)
        out.append(info)
    return out


def _uid_of(obj: Obj) -> list[str]:
    return [meta.uid(obj)]


def deletion_policy(obj: Obj) -> str:
    finalizers = meta.finalizers(obj)
    if ORPHAN in finalizers:
        return "Orphan"
    if FOREGROUND in finalizers:
        return "Foreground"
    return "Background"


def deleting_dependents(obj: Obj) -> bool:
    return meta.deletion_timestamp(obj) is not None and FOREGROUND in meta.finalizers(obj)


class GarbageCollector(BaseController):
    """Keeps the ownerReference graph consistent with what exists."""

    def __init__(self, ctx: ControllerContext, workers: int = 20) -> None:
        super().__init__(ctx, NAME, workers)
        self.client = ctx.client
        self.informers: dict[tuple[str, str], Any] = {}
        self.infos: dict[tuple[str, str], kinds.ResourceInfo] = {}
        for info in tracked_resources():
            informer = ctx.informers.informer(info.resource, info.group)
            informer.add_index("uid", _uid_of)
            owner_uid_index(informer)
            ident = (info.group, info.resource)
            self.informers[ident] = informer
            self.infos[ident] = info
            informer.add_handlers(
                on_add=lambda obj, i=info: self._changed(i, None, obj),
                on_update=lambda old, new, i=info: self._changed(i, old, new),
                on_delete=lambda obj, i=info: self._deleted(i, obj))

    # handlers ---------------------------------------------------------------------------

    def _ref(self, info: kinds.ResourceInfo, obj: Obj) -> ObjectRef:
        return ObjectRef(info.group, info.resource, meta.namespace(obj), meta.name(obj),
                         meta.uid(obj))

    def _changed(self, info: kinds.ResourceInfo, old: Obj | None, new: Obj) -> None:
        interesting = (old is None
                       or meta.owner_references(old) != meta.owner_references(new)
                       or meta.finalizers(old) != meta.finalizers(new)
                       or meta.deletion_timestamp(old) != meta.deletion_timestamp(new))
        if not interesting:
            return
        if meta.owner_references(new) or (meta.deletion_timestamp(new) is not None and {
                FOREGROUND, ORPHAN} & set(meta.finalizers(new))):
            self.enqueue(self._ref(info, new))

    def _deleted(self, info: kinds.ResourceInfo, obj: Obj) -> None:
        for dependent_info, dependent in self.dependents(meta.uid(obj)):
            self.enqueue(self._ref(dependent_info, dependent))
        for ref in meta.owner_references(obj):
            owner = self._cached_owner(ref, meta.namespace(obj))
            if owner is not None and deleting_dependents(owner[1]):
                self.enqueue(self._ref(owner[0], owner[1]))

    # graph queries ----------------------------------------------------------------------

    def dependents(self, owner_uid: str) -> list[tuple[kinds.ResourceInfo, Obj]]:
        out = []
        for ident, informer in self.informers.items():
            for obj in informer.cache.by_index("owner-uid", owner_uid):
                out.append((self.infos[ident], obj))
        return out

    def _owner_info(self, ref: Obj) -> kinds.ResourceInfo | None:
        info = kinds.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if info is None or (info.group, info.resource) not in self.informers:
            return None
        return info

    def _cached_owner(self, ref: Obj, namespace: str) -> tuple[kinds.ResourceInfo, Obj] | None:
        info = self._owner_info(ref)
        if info is None:
            return None
        found = self.informers[(info.group, info.resource)].cache.by_index(
            "uid", ref.get("uid", ""))
        return (info, found[0]) if found else None

    async def _owner_state(self, ref: Obj, namespace: str) -> str:
        """``solid``, ``dangling``, ``waiting`` (owner deleting dependents) or ``unknown``."""
        info = self._owner_info(ref)
        if info is None:
            return "unknown"  # a kind tinykube does not serve: never delete for it
        cached = self._cached_owner(ref, namespace)
        owner = cached[1] if cached else None
        if owner is None:
            try:
                owner = await self.client.resource(info.resource, info.group).get(
                    ref.get("name", ""), namespace=namespace if info.namespaced else None)
            except ApiError as err:
                if err.code == 404:
                    return "dangling"
                raise
            if meta.uid(owner) != ref.get("uid"):
                return "dangling"
        return "waiting" if deleting_dependents(owner) else "solid"

    def _current(self, item: ObjectRef) -> Obj | None:
        informer = self.informers.get((item.group, item.resource))
        if informer is None:
            return None
        found = informer.cache.by_index("uid", item.uid)
        return found[0] if found else None

    # sync -------------------------------------------------------------------------------

    async def sync(self, item: ObjectRef) -> None:
        obj = self._current(item)
        if obj is None:
            return
        if meta.deletion_timestamp(obj) is not None:
            if ORPHAN in meta.finalizers(obj):
                await self._orphan_dependents(item, obj)
            elif FOREGROUND in meta.finalizers(obj):
                await self._process_deleting_dependents(item, obj)
            return
        await self._attempt_to_delete(item, obj)

    async def _attempt_to_delete(self, item: ObjectRef, obj: Obj) -> None:
        refs = meta.owner_references(obj)
        if not refs:
            return
        states: dict[str, list[Obj]] = {"solid": [], "dangling": [], "waiting": [],
                                        "unknown": []}
        for ref in refs:
            states[await self._owner_state(ref, item.namespace)].append(ref)
        if states["solid"] or states["unknown"]:
            gone = {r.get("uid") for r in states["dangling"] + states["waiting"]}
            if gone:
                await self._patch_owner_refs(item, [r for r in refs if r.get("uid") not in gone])
            return
        dependents = self.dependents(item.uid)
        if states["waiting"] and dependents:
            # Our owner waits for us and we have dependents: delete ourselves in the
            # foreground too, so the wait covers the whole subtree. Only when a dependent
            # is itself waiting (a possible cycle) do we stop blocking our owners, as
            # upstream does to avoid a deadlock.
            if any(deleting_dependents(dep) for _, dep in dependents):
                waiting = {r.get("uid") for r in states["waiting"]}
                await self._patch_owner_refs(item, [
                    {**r, "blockOwnerDeletion": False} if r.get("uid") in waiting else r
                    for r in refs])
            await self._delete(item, "Foreground")
            return
        await self._delete(item, deletion_policy(obj))

    async def _process_deleting_dependents(self, item: ObjectRef, owner: Obj) -> None:
        blocking = []
        for info, dep in self.dependents(item.uid):
            ref = next((r for r in meta.owner_references(dep) if r.get("uid") == item.uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking.append((info, dep))
        if not blocking:
            await self._remove_finalizer(item, owner, FOREGROUND)
            return
        for info, dep in blocking:
            if meta.deletion_timestamp(dep) is None:
                self.enqueue(self._ref(info, dep))

    async def _orphan_dependents(self, item: ObjectRef, owner: Obj) -> None:
        for info, dep in self.dependents(item.uid):
            dep_ref = self._ref(info, dep)
            remaining = [r for r in meta.owner_references(dep) if r.get("uid") != item.uid]
            await self._patch_owner_refs(dep_ref, remaining)
        await self._remove_finalizer(item, owner, ORPHAN)

    # writes -----------------------------------------------------------------------------

    def _resource(self, item: ObjectRef) -> Any:
        return self.client.resource(item.resource, item.group or None)

    def _ns(self, item: ObjectRef) -> str | None:
        return item.namespace or None

    async def _delete(self, item: ObjectRef, policy: str) -> None:
        log.info("garbage collector: deleting %s %s/%s (%s)", item.resource, item.namespace,
                 item.name, policy)
        try:
            await self._resource(item).delete(item.name, namespace=self._ns(item),
                                              propagation_policy=policy,
                                              preconditions={"uid": item.uid})
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _patch_owner_refs(self, item: ObjectRef, refs: list[Obj]) -> None:
        body = {"metadata": {"ownerReferences": refs or None, "uid": item.uid}}
        try:
            await self._resource(item).patch(item.name, body, namespace=self._ns(item),
                                             patch_type="merge")
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    async def _remove_finalizer(self, item: ObjectRef, obj: Obj, finalizer: str) -> None:
        remaining = [f for f in meta.finalizers(obj) if f != finalizer]
        body = {"metadata": {"finalizers": remaining or None, "uid": item.uid,
                             "resourceVersion": meta.resource_version(obj)}}
        with ignore_not_found():
            await self._resource(item).patch(item.name, body, namespace=self._ns(item),
                                             patch_type="merge")


def new_garbage_collector(ctx: ControllerContext) -> GarbageCollector:
    return GarbageCollector(ctx, workers=ctx.config.concurrent_gc_syncs)
