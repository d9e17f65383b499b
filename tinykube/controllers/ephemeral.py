"""The ephemeral-volume controller: claims for pods' generic ephemeral volumes.

A pod volume with ``ephemeral.volumeClaimTemplate`` needs the PersistentVolumeClaim
``<pod>-<volume>``; the controller creates it from the template, owned by the pod (so the
garbage collector deletes it with the pod). A claim of that name not owned by the pod is
never taken over: the pod cannot start and an Event says why, as upstream.
"""

from __future__ import annotations

import copy
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext
from tinykube.controllers.podcontrol import controller_ref

Obj = dict[str, Any]
NAME = "ephemeral-volume-controller"


def ephemeral_claims(pod: Obj) -> list[Obj]:
    """The claims the pod's ephemeral volumes need, built from their templates."""
    out = []
    for volume in util.spec(pod).get("volumes") or []:
        template = (volume.get("ephemeral") or {}).get("volumeClaimTemplate")
        if template is None:
            continue
        tmeta = template.get("metadata") or {}
        claim: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                      "metadata": {"name": f"{meta.name(pod)}-{volume.get('name')}",
                                   "ownerReferences": [controller_ref(pod)]},
                      "spec": copy.deepcopy(template.get("spec") or {})}
        for field in ("labels", "annotations"):
            if tmeta.get(field):
                claim["metadata"][field] = dict(tmeta[field])
        out.append(claim)
    return out


class EphemeralVolumeController(BaseController):
    """Creates the claims of generic ephemeral volumes."""

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx, NAME, 2)
        self.pod_informer = ctx.informers.informer("pods")
        self.pvc_informer = ctx.informers.informer("persistentvolumeclaims")
        self.claims = ctx.client.resource("persistentvolumeclaims")
        self.recorder = ctx.recorder(NAME)
        self.pod_informer.add_handlers(on_add=self._pod_seen)
        self.pvc_informer.add_handlers(on_delete=self._claim_deleted)

    def _pod_seen(self, pod: Obj) -> None:
        if any("ephemeral" in v for v in util.spec(pod).get("volumes") or []):
            self.enqueue(meta.key(pod))

    def _claim_deleted(self, claim: Obj) -> None:
        key = util.controller_key(claim, "Pod")
        if key is not None:
            self.enqueue(key)

    async def sync(self, key: str) -> None:
        pod = self.pod_informer.cache.get(key)
        if pod is None or meta.deletion_timestamp(pod) is not None:
            return
        ns = meta.namespace(pod)
        for claim in ephemeral_claims(pod):
            existing = self.pvc_informer.cache.get(f"{ns}/{meta.name(claim)}")
            if existing is None:
                try:
                    await self.claims.create(claim, namespace=ns)
                    continue
                except ApiError as err:
                    if err.code != 409:
                        raise
                    existing = await self.claims.get(meta.name(claim), namespace=ns)
            ref = meta.controller_of(existing)
            if not ref or ref.get("uid") != meta.uid(pod):
                self.recorder.event(pod, "Warning", "FailedCreate",
                                    f"PVC {ns}/{meta.name(claim)} was not created for the pod")


def new_ephemeral_volume_controller(ctx: ControllerContext) -> EphemeralVolumeController:
    return EphemeralVolumeController(ctx)
