"""Namespaces: the ``kubernetes`` finalizer, the Terminating phase and /finalize.

Deleting a namespace only marks it Terminating; the namespace controller empties it,
removes ``kubernetes`` from ``spec.finalizers`` through ``/finalize`` and deletes it again,
which then removes it for real (kube-apiserver's namespace REST does the same).
"""

from __future__ import annotations

from tinykube.api import errors, meta
from tinykube.apiserver.registry.base import Strategy

FINALIZER_KUBERNETES = "kubernetes"
TERMINATING_MESSAGE = ("The system is ensuring all content is removed from this namespace.  "
                       "Upon completion, this namespace will automatically be purged by the "
                       "system.")


def spec_finalizers(obj: dict) -> list[str]:
    return list((obj.get("spec") or {}).get("finalizers") or [])


class NamespaceStrategy(Strategy):
    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        spec = obj.setdefault("spec", {})
        finalizers = list(spec.get("finalizers") or [])
        if FINALIZER_KUBERNETES not in finalizers:
            finalizers.append(FINALIZER_KUBERNETES)
        spec["finalizers"] = finalizers
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: dict, old: dict) -> None:
        super().prepare_for_update(new, old)
        # spec.finalizers change only through /finalize.
        new.setdefault("spec", {})["finalizers"] = spec_finalizers(old)

    def prepare_for_finalize(self, new: dict, old: dict) -> dict:
        """The object /finalize stores: the old one with the new spec.finalizers."""
        out = dict(old)
        out["spec"] = {**(old.get("spec") or {}), "finalizers": spec_finalizers(new)}
        return out

    def keeps_object(self, obj: dict) -> bool:
        """A namespace stays until its spec finalizers are gone."""
        return bool(spec_finalizers(obj))

    def mark_deleting(self, obj: dict) -> None:
        obj["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}

    def repeated_delete_error(self, obj: dict) -> errors.ApiError | None:
        if self.keeps_object(obj):
            return errors.conflict(self.info, meta.name(obj), TERMINATING_MESSAGE)
        return None
