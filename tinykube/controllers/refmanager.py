"""Adoption and orphaning: which objects a controller owns (upstream ControllerRefManager).

An object belongs to a controller when its controller ownerReference names the
controller's uid. The controller adopts matching orphans and releases owned objects whose
labels stopped matching its selector; objects owned by another controller are never
touched. Adoption is skipped once the owner is being deleted (checked against a fresh
read, so a stale cache cannot adopt for an owner that is already gone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.api.selectors import LabelSelector

from tinykube.controllers.podcontrol import controller_ref

Obj = dict[str, Any]
PatchFn = Callable[[str, str, Obj], Awaitable[Obj]]  # (namespace, name, merge patch)
FreshFn = Callable[[], Awaitable[Obj | None]]


class ControllerRefManager:
    """Claims objects for one owner: keep, adopt or release each."""

    def __init__(self, owner: Obj, selector: LabelSelector, patch: PatchFn,
                 fresh_owner: FreshFn) -> None:
        self.owner = owner
        self.selector = selector
        self._patch = patch
        self._fresh_owner = fresh_owner
        self._adopt_checked: bool | None = None

    async def claim(self, objs: list[Obj]) -> list[Obj]:
        """The objects owned after adoption/release; errors on one object skip only it."""
        owner_uid = meta.uid(self.owner)
        claimed: list[Obj] = []
        for obj in objs:
            ref = meta.controller_of(obj)
            matches = self.selector.matches(meta.labels(obj))
            if ref is not None:
                if ref.get("uid") != owner_uid:
                    continue
                if matches:
                    claimed.append(obj)
                elif meta.deletion_timestamp(self.owner) is None:
                    await self._release(obj)
                continue
            if not matches or meta.deletion_timestamp(obj) is not None:
                continue
            if await self._can_adopt():
                adopted = await self._adopt(obj)
                if adopted is not None:
                    claimed.append(adopted)
        return claimed

    async def _can_adopt(self) -> bool:
        if self._adopt_checked is None:
            if meta.deletion_timestamp(self.owner) is not None:
                self._adopt_checked = False
            else:
                fresh = await self._fresh_owner()
                self._adopt_checked = (fresh is not None
                                       and meta.uid(fresh) == meta.uid(self.owner)
                                       and meta.deletion_timestamp(fresh) is None)
        return self._adopt_checked

    async def _adopt(self, obj: Obj) -> Obj | None:
        refs = [r for r in meta.owner_references(obj) if r.get("uid") != meta.uid(self.owner)]
        refs.append(controller_ref(self.owner))
        try:
            return await self._patch(meta.namespace(obj), meta.name(obj),
                                     {"metadata": {"ownerReferences": refs,
                                                   "uid": meta.uid(obj)}})
        except ApiError as err:
            if err.code in (404, 409, 422):
                return None  # gone or changed since the cache saw it; next sync decides
            raise

    async def _release(self, obj: Obj) -> None:
        refs = [r for r in meta.owner_references(obj) if r.get("uid") != meta.uid(self.owner)]
        try:
            await self._patch(meta.namespace(obj), meta.name(obj),
                              {"metadata": {"ownerReferences": refs or None,
                                            "uid": meta.uid(obj)}})
        except ApiError as err:
            if err.code not in (404, 409, 422):
                raise
