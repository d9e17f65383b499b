"""NamespaceLifecycle: no new objects in missing or terminating namespaces, and the
system namespaces can never be deleted (upstream's plugin of the same name)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinykube.api import errors
from tinykube.api.kinds import lookup
from tinykube.apiserver.admission import CREATE, DELETE, Attributes

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
# Reviews are never stored, so they may name any namespace.
EXEMPT_RESOURCES = frozenset({"subjectaccessreviews", "selfsubjectaccessreviews",
                              "localsubjectaccessreviews", "tokenreviews"})
NAMESPACES = lookup("", "v1", "namespaces")


class NamespaceLifecycle:
    name = "NamespaceLifecycle"

    def __init__(self, server: "APIServer"):
        self.server = server

    async def validate(self, attrs: Attributes) -> None:
        if attrs.resource.resource == "namespaces":
            if attrs.operation == DELETE and attrs.name in IMMORTAL_NAMESPACES:
                raise errors.forbidden(NAMESPACES, attrs.name,
                                       "this namespace may not be deleted")
            return
        if (attrs.operation != CREATE or not attrs.resource.namespaced
                or attrs.resource.resource in EXEMPT_RESOURCES or not attrs.namespace):
            return
        namespace = await self._namespace(attrs.namespace)
        if namespace is None:
            raise errors.not_found(NAMESPACES, attrs.namespace)
        if (namespace.get("status") or {}).get("phase") == "Terminating" or \
                (namespace.get("metadata") or {}).get("deletionTimestamp"):
            if attrs.subresource:
                return
            raise errors.namespace_terminating(attrs.resource, attrs.name, attrs.namespace)

    async def _namespace(self, name: str) -> dict | None:
        """From the watch cache, or the store when the cache has not seen it yet."""
        cached = self.server.watch_cache.get(NAMESPACES, "", name)
        if cached is not None:
            return cached.obj
        from tinykube.apiserver.objects import Objects

        found = await Objects(self.server.store, NAMESPACES).get_or_none("", name)
        return found[0] if found else None
