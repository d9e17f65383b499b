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

import copy
import time
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext
from tinykube.controllers.endpointslice import (MANAGED_BY, PENDING_TIMEOUT, SERVICE_NAME,
                                                address_type, slice_ports)
from tinykube.controllers.podcontrol import controller_ref

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
        self.slice_informer = ctx.informers.informer("endpointslices", "discovery.k8s.io")
        self.slice_informer.add_index("mirrored-from", _mirrored_from)
        self.slices = ctx.client.resource("endpointslices", "discovery.k8s.io")
        self._pending: dict[str, dict[str, float]] = {}
        for informer in (self.svc_informer, self.ep_informer):
            informer.add_handlers(on_add=self._changed,
                                  on_update=lambda old, new: self._changed(new),
                                  on_delete=self._changed)
        self.slice_informer.add_handlers(on_add=self._slice_changed,
                                         on_update=lambda old, new: self._slice_changed(new),
                                         on_delete=self._slice_changed)

    def _changed(self, obj: Obj) -> None:
        self.enqueue(meta.key(obj))

    def _slice_changed(self, sl: Obj) -> None:
        if meta.labels(sl).get(MANAGED_BY) == CONTROLLER_NAME:
            self.enqueue(f"{meta.namespace(sl)}/{meta.labels(sl).get(SERVICE_NAME, '')}")

    def _should_mirror(self, key: str) -> Obj | None:
        svc = self.svc_informer.cache.get(key)
        endpoints = self.ep_informer.cache.get(key)
        if svc is None or endpoints is None or util.spec(svc).get("selector"):
            return None
        if meta.labels(endpoints).get(SKIP_MIRROR) == "true":
            return None
        return endpoints

    async def sync(self, key: str) -> None:
        pending = self._pending.get(key, {})
        now = time.monotonic()
        namespace, name = meta.split_key(key)
        for slice_name, created in list(pending.items()):
            if f"{namespace}/{slice_name}" in self.slice_informer.cache or \
                    now - created > PENDING_TIMEOUT:
                del pending[slice_name]
        if pending:
            self.enqueue_after(key, PENDING_TIMEOUT)
            return
        existing = sorted((s for s in self.slice_informer.cache.by_index("mirrored-from", key)
                           if meta.labels(s).get(MANAGED_BY) == CONTROLLER_NAME), key=meta.name)
        endpoints = self._should_mirror(key)
        desired = desired_mirror(endpoints) if endpoints is not None else []
        labels = {**{k: v for k, v in meta.labels(endpoints or {}).items()},
                  SERVICE_NAME: name, MANAGED_BY: CONTROLLER_NAME}
        for i, (ports, eps, family) in enumerate(desired):
            body = {"addressType": family, "ports": ports, "endpoints": eps}
            if i < len(existing):
                current = existing[i]
                if (current.get("addressType"), current.get("ports") or [],
                        current.get("endpoints") or [], meta.labels(current)) == (
                        family, ports, eps, labels):
                    continue
                updated = copy.deepcopy(current)
                updated.update(body)
                updated["metadata"]["labels"] = labels
                await self.slices.update(updated)
                continue
            new = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"generateName": f"{name}-", "labels": labels,
                                "ownerReferences": [controller_ref(endpoints)]}, **body}
            try:
                made = await self.slices.create(new, namespace=namespace)
            except ApiError as err:
                if err.code == 403:
                    return
                raise
            self._pending.setdefault(key, {})[meta.name(made)] = time.monotonic()
        for extra in existing[len(desired):]:
            try:
                await self.slices.delete(meta.name(extra), namespace=namespace)
            except ApiError as err:
                if err.code != 404:
                    raise


def _mirrored_from(sl: Obj) -> list[str]:
    name = meta.labels(sl).get(SERVICE_NAME)
    return [f"{meta.namespace(sl)}/{name}"] if name else []


def new_endpointslice_mirroring_controller(ctx: ControllerContext
                                           ) -> EndpointSliceMirroringController:
    return EndpointSliceMirroringController(ctx)
