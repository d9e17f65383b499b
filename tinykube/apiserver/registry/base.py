"""The default registry strategy: what every resource does on create, update and delete.

A strategy is kube-apiserver's RESTCreateStrategy/RESTUpdateStrategy for one resource:
system metadata, generation, status separation, field selectors and the hooks resources
need around storage (allocating ClusterIPs, graceful deletion, ...). Resources with more
to do subclass :class:`Strategy` in their own module of this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinykube.api import errors, meta, selectors
from tinykube.api.kinds import ResourceInfo

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

# Resources whose metadata.generation tracks spec changes (upstream strategies that set it).
GENERATION_RESOURCES = frozenset({
    "deployments", "replicasets", "statefulsets", "daemonsets", "replicationcontrollers",
    "jobs", "cronjobs", "horizontalpodautoscalers", "poddisruptionbudgets", "ingresses",
    "networkpolicies", "priorityclasses", "persistentvolumeclaims", "customresourcedefinitions",
})

# Fields the main resource never takes from a client of a kind with a status subresource.
NON_SPEC_KEYS = frozenset({"metadata", "status", "apiVersion", "kind"})


class Strategy:
    """Default behaviour; one instance per resource, holding no per-request state."""

    # DELETE answers with the deleted object instead of a Status (pods, services, ...).
    return_deleted_object = False

    def __init__(self, info: ResourceInfo):
        self.info = info
        self.has_status = "status" in info.subresources
        self.tracks_generation = info.resource in GENERATION_RESOURCES

    def ttl(self, server: "APIServer") -> int:
        """Seconds until the store expires a written object; 0 keeps it (all but events)."""
        return 0

    # --- create ------------------------------------------------------------------

    def prepare_for_create(self, obj: dict) -> None:
        """Reset what clients may not set on create (kube-apiserver's PrepareForCreate)."""
        md = meta.ensure_metadata(obj)
        if self.tracks_generation:
            md["generation"] = 1
        else:
            md.pop("generation", None)
        self.reset_status(obj)

    def reset_status(self, obj: dict) -> None:
        """Status belongs to controllers: a create starts without one."""
        if self.has_status:
            obj.pop("status", None)

    async def before_create(self, server: "APIServer", obj: dict, dry_run: bool) -> None:
        """Allocate what the object needs from the cluster (e.g. a ClusterIP)."""

    async def undo_create(self, server: "APIServer", obj: dict) -> None:
        """Release what ``before_create`` allocated when storing failed."""

    # --- update ------------------------------------------------------------------

    def prepare_for_update(self, new: dict, old: dict) -> None:
        """Keep status (when it has its own subresource) and bump generation on spec change."""
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        self.bump_generation(new, old)

    def prepare_for_status_update(self, new: dict, old: dict) -> dict:
        """The object a /status write stores: the old object with the new status."""
        out = dict(old)
        if "status" in new:
            out["status"] = new["status"]
        else:
            out.pop("status", None)
        md = dict(meta.metadata(old))
        new_md = meta.metadata(new)
        md["resourceVersion"] = new_md.get("resourceVersion", md.get("resourceVersion"))
        out["metadata"] = md
        return out

    def bump_generation(self, new: dict, old: dict) -> None:
        md = meta.ensure_metadata(new)
        old_generation = meta.metadata(old).get("generation")
        if not self.tracks_generation:
            if old_generation is None:
                md.pop("generation", None)
            else:
                md["generation"] = old_generation
            return
        generation = int(old_generation or 1)
        if spec_of(new) != spec_of(old):
            generation += 1
        md["generation"] = generation

    async def before_update(self, server: "APIServer", new: dict, old: dict,
                            dry_run: bool) -> None:
        """Adjust allocations when an update changes them (Service type changes)."""

    # --- delete ------------------------------------------------------------------

    def graceful_delete_seconds(self, obj: dict, requested: int | None) -> int:
        """Seconds of grace before the object goes: 0 removes it now (most kinds)."""
        return 0

    def keeps_object(self, obj: dict) -> bool:
        """Whether a deleting object must stay beyond its finalizers (namespaces)."""
        return False

    def mark_deleting(self, obj: dict) -> None:
        """Adjust an object that just got its deletionTimestamp (e.g. phase Terminating)."""

    def repeated_delete_error(self, obj: dict) -> "errors.ApiError | None":
        """The answer to deleting an object that is already being deleted (None: 200)."""
        return None

    async def after_delete(self, server: "APIServer", obj: dict) -> None:
        """Release allocations held by a deleted object."""

    # --- reads ---------------------------------------------------------------------

    def field_values(self, obj: dict) -> dict[str, str]:
        return selectors.object_fields(self.info.kind, obj)

    def supported_fields(self) -> set[str]:
        return selectors.supported_fields(self.info.kind)


def spec_of(obj: dict) -> dict[str, Any]:
    """Everything but metadata and status: what a generation counts changes of."""
    return {k: v for k, v in obj.items() if k not in NON_SPEC_KEYS}
