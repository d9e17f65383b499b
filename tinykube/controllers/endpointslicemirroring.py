"""The endpointslice-mirroring controller: EndpointSlices for hand-made Endpoints.

A Service without a selector gets its endpoints from an Endpoints object someone else
writes; consumers that read only EndpointSlices (kube-proxy, DNS) would miss them, so each
subset is mirrored into an EndpointSlice (``addresses`` ready, ``notReadyAddresses`` not)
labelled ``endpointslice.kubernetes.io/managed-by:
endpointslicemirroring-controller.k8s.io`` and owned by the Endpoints object, as upstream.
Endpoints labelled ``endpointslice.kubernetes.io/skip-mirror: "true"`` and those of
Services with a selector (the endpointslice controller's) are not mirrored.
"""

from __future__ import annotations

from typing import Any

from tinykube.api import meta

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext
from tinykube.controllers.endpointslice import (MANAGED_BY, PENDING_TIMEOUT, SERVICE_NAME,
                                                ManagedSlices, address_type, slice_ports)

Obj = dict[str, Any]
NAME = "endpointslice-mirroring-controller"
CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"


def mirrored_endpoint(address: Obj, ready: bool) -> Obj:
    out: Obj = {"addresses": [address["ip"]],
                "conditions": {"ready": ready, "serving": ready, "terminating": False}}
    for field in ("nodeName", "hostname", "targetRef"):
        if address.get(field):
            out[field] = address[field]
    return out


def desired_mirror(endpoints: Obj) -> list[tuple[list[Obj], list[Obj], str]]:
    """(ports, endpoints, addressType) per slice: one per subset and address family."""
    out = []
    for subset in endpoints.get("subsets") or []:
        ports = slice_ports([{k: v for k, v in p.items() if k in ("name", "port", "protocol",
                                                                 "appProtocol")}
                             for p in subset.get("ports") or []])
        families: dict[str, list[Obj]] = {}
        for address, ready in [*((a, True) for a in subset.get("addresses") or []),
                               *((a, False) for a in subset.get("notReadyAddresses") or [])]:
            if address.get("ip"):
                families.setdefault(address_type(address["ip"]), []).append(
                    mirrored_endpoint(address, ready))
        for family in sorted(families):
            out.append((ports, families[family], family))
    return out


class EndpointSliceMirroringController(BaseController):
    """Mirrors selectorless Services' Endpoints into EndpointSlices."""

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx, NAME, 2)
        self.svc_informer = ctx.informers.informer("services")
        self.ep_informer = ctx.informers.informer("endpoints")
        self.slices = ManagedSlices(ctx, CONTROLLER_NAME)
        for informer in (self.svc_informer, self.ep_informer):
            informer.add_handlers(on_add=self._changed,
                                  on_update=lambda old, new: self._changed(new),
                                  on_delete=self._changed)
        self.slices.route_events(self.enqueue)

    def _changed(self, obj: Obj) -> None:
        self.enqueue(meta.key(obj))

    def _should_mirror(self, key: str) -> Obj | None:
        svc = self.svc_informer.cache.get(key)
        endpoints = self.ep_informer.cache.get(key)
        if svc is None or endpoints is None or util.spec(svc).get("selector"):
            return None
        if meta.labels(endpoints).get(SKIP_MIRROR) == "true":
            return None
        return endpoints

    async def sync(self, key: str) -> None:
        if self.slices.awaiting_creations(key):
            self.enqueue_after(key, PENDING_TIMEOUT)
            return
        _, name = meta.split_key(key)
        endpoints = self._should_mirror(key)
        desired = desired_mirror(endpoints) if endpoints is not None else []
        labels = {**{k: v for k, v in meta.labels(endpoints or {}).items()},
                  SERVICE_NAME: name, MANAGED_BY: CONTROLLER_NAME}
        await self.slices.reconcile(key, endpoints, labels, desired)


def new_endpointslice_mirroring_controller(ctx: ControllerContext
                                           ) -> EndpointSliceMirroringController:
    return EndpointSliceMirroringController(ctx)
