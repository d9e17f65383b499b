"""The endpointslice controller: discovery.k8s.io/v1 EndpointSlices per selector Service.

Endpoints are grouped by their resolved port set and cut into slices of at most
``MAX_ENDPOINTS_PER_SLICE`` (upstream's default 100). Each endpoint carries the
conditions ``ready`` (serving and not terminating), ``serving`` (the pod's Ready
condition) and ``terminating``; slices are labelled ``kubernetes.io/service-name`` and
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`` and owned by
the Service, so the garbage collector removes them with it. A Service selecting nothing
keeps one empty placeholder slice, as upstream. Slices this controller created but has not
seen in its cache yet are tracked, so a lagging cache never makes it create twice.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError, ignore_not_found

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext, namespace_index
from tinykube.controllers.endpoints import (enqueue_selecting_services, pod_hostname, pod_ip,
                                            resolved_ports, service_selector,
                                            should_be_in_endpoints, target_ref)
from tinykube.controllers.podcontrol import controller_ref

Obj = dict[str, Any]
NAME = "endpointslice-controller"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME = meta.SERVICE_NAME_LABEL
MAX_ENDPOINTS_PER_SLICE = 100
# A created slice not seen in the cache after this long is assumed lost (as expectations).
PENDING_TIMEOUT = 60.0


def address_type(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def build_endpoint(pod: Obj, svc: Obj) -> Obj:
    terminating = meta.deletion_timestamp(pod) is not None
    serving = util.is_pod_ready(pod)
    if util.spec(svc).get("publishNotReadyAddresses"):
        serving = True
    endpoint: Obj = {
        "addresses": [pod_ip(pod)],
        "conditions": {"ready": serving and not terminating, "serving": serving,
                       "terminating": terminating},
        "targetRef": target_ref(pod),
    }
    if util.spec(pod).get("nodeName"):
        endpoint["nodeName"] = util.spec(pod)["nodeName"]
    hostname = pod_hostname(pod, svc)
    if hostname:
        endpoint["hostname"] = hostname
    return endpoint


def slice_ports(ports: list[Obj]) -> list[Obj]:
    """EndpointSlice ports always carry a name ("" by default, as the API stores them)."""
    return [{**p, "name": p.get("name", "")} for p in ports]


def desired_slices(svc: Obj, pods: list[Obj]) -> list[tuple[list[Obj], list[Obj], str]]:
    """(ports, endpoints, addressType) per slice the Service should have."""
    groups: dict[tuple, tuple[list[Obj], list[Obj], str]] = {}
    for pod in sorted(pods, key=meta.name):
        if not should_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = resolved_ports(pod, svc)
        if ports is None:
            continue
        family = address_type(pod_ip(pod))
        key = (family, tuple(sorted((p.get("name", ""), p["port"], p["protocol"])
                                    for p in ports)))
        groups.setdefault(key, (slice_ports(ports), [], family))[1].append(
            build_endpoint(pod, svc))
    out = []
    for key in sorted(groups):
        ports, endpoints, family = groups[key]
        for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
            out.append((ports, endpoints[i:i + MAX_ENDPOINTS_PER_SLICE], family))
    if not out:
        family = "IPv6" if ":" in (util.spec(svc).get("clusterIP") or "") else "IPv4"
        out.append(([], [], family))  # the placeholder slice
    return out


def slice_labels(svc: Obj) -> dict[str, str]:
    labels = {k: v for k, v in meta.labels(svc).items()}
    labels[SERVICE_NAME] = meta.name(svc)
    labels[MANAGED_BY] = CONTROLLER_NAME
    if util.spec(svc).get("clusterIP") == "None":
        labels["service.kubernetes.io/headless"] = ""
    return labels


def slice_content(obj: Obj) -> tuple:
    return (obj.get("addressType"), obj.get("ports") or [], obj.get("endpoints") or [],
            meta.labels(obj))


class ManagedSlices:
    """The EndpointSlices one controller manages, per Service key ``ns/name``.

    Both slice controllers (this one and endpointslice-mirroring) write the same way:
    update the existing slices in place, create the missing ones, delete the extra ones.
    Creations not yet seen in the cache are remembered, so a lagging cache never makes a
    controller create twice.
    """

    def __init__(self, ctx: ControllerContext, controller_name: str) -> None:
        self.controller_name = controller_name
        self.informer = ctx.informers.informer("endpointslices", "discovery.k8s.io")
        self.informer.add_index("service", _service_of)
        self.client = ctx.client.resource("endpointslices", "discovery.k8s.io")
        # service key -> {slice name: when created} for creations not yet in the cache
        self._pending: dict[str, dict[str, float]] = {}

    def route_events(self, enqueue: Callable[[str], None]) -> None:
        """Requeue the Service of every change to a slice this controller manages."""
        def changed(sl: Obj) -> None:
            if meta.labels(sl).get(MANAGED_BY) == self.controller_name:
                enqueue(f"{meta.namespace(sl)}/{meta.labels(sl).get(SERVICE_NAME, '')}")

        self.informer.add_handlers(on_add=changed, on_update=lambda old, new: changed(new),
                                   on_delete=changed)

    def existing(self, key: str) -> list[Obj]:
        """The cached slices of Service ``key`` this controller manages, by name."""
        return sorted((s for s in self.informer.cache.by_index("service", key)
                       if meta.labels(s).get(MANAGED_BY) == self.controller_name),
                      key=meta.name)

    def awaiting_creations(self, key: str) -> bool:
        """True while a slice we created is neither in the cache nor timed out."""
        pending = self._pending.get(key)
        if not pending:
            return False
        namespace, _ = meta.split_key(key)
        now = time.monotonic()
        for name, created in list(pending.items()):
            if f"{namespace}/{name}" in self.informer.cache or \
                    now - created > PENDING_TIMEOUT:
                del pending[name]
        if not pending:
            del self._pending[key]
            return False
        return True

    async def reconcile(self, key: str, owner: Obj | None, labels: dict[str, str],
                        desired: list[tuple[list[Obj], list[Obj], str]]) -> None:
        """Make Service ``key``'s slices ``desired`` (``owner`` owns the ones created; it
        may be None only when nothing is desired)."""
        namespace, name = meta.split_key(key)
        existing = self.existing(key)
        for i, (ports, endpoints, family) in enumerate(desired):
            body: Obj = {"addressType": family, "ports": ports, "endpoints": endpoints}
            if i < len(existing):
                current = existing[i]
                if slice_content(current) == (family, ports, endpoints, labels):
                    continue
                updated = copy.deepcopy(current)
                updated.update(body)
                updated["metadata"]["labels"] = labels
                await self.client.update(updated)
                continue
            new: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"generateName": f"{name}-", "labels": labels,
                                     "ownerReferences": [controller_ref(owner)]}, **body}
            try:
                made = await self.client.create(new, namespace=namespace)
            except ApiError as err:
                if err.code == 403:
                    return  # namespace terminating
                raise
            self._pending.setdefault(key, {})[meta.name(made)] = time.monotonic()
        for extra in existing[len(desired):]:
            with ignore_not_found():
                await self.client.delete(meta.name(extra), namespace=namespace)


class EndpointSliceController(BaseController):
    """Keeps each selector Service's EndpointSlices equal to its selected pods."""

    def __init__(self, ctx: ControllerContext, workers: int = 5) -> None:
        super().__init__(ctx, NAME, workers)
        self.svc_informer = ctx.informers.informer("services")
        self.pod_informer = ctx.informers.informer("pods")
        namespace_index(self.pod_informer)
        namespace_index(self.svc_informer)
        self.slices = ManagedSlices(ctx, CONTROLLER_NAME)
        self.svc_informer.add_handlers(on_add=self._svc_changed,
                                       on_update=lambda old, new: self._svc_changed(new),
                                       on_delete=self._svc_changed)
        enqueue_selecting_services(self.pod_informer, self.svc_informer.cache, self.enqueue)
        self.slices.route_events(self.enqueue)

    def _svc_changed(self, svc: Obj) -> None:
        self.enqueue(meta.key(svc))

    async def sync(self, key: str) -> None:
        if self.slices.awaiting_creations(key):
            # Our creations are not in the cache yet: their events requeue us (or, if one
            # was lost, the timeout does).
            self.enqueue_after(key, PENDING_TIMEOUT)
            return
        namespace, _ = meta.split_key(key)
        svc = self.svc_informer.cache.get(key)
        if svc is None or service_selector(svc) is None:
            return  # the garbage collector deletes slices owned by a deleted Service
        selector = service_selector(svc)
        pods = [p for p in self.pod_informer.cache.by_index("namespace", namespace)
                if selector.matches(meta.labels(p))]
        await self.slices.reconcile(key, svc, slice_labels(svc), desired_slices(svc, pods))


def _service_of(sl: Obj) -> list[str]:
    key = meta.slice_service_key(sl)
    return [key] if key else []


def new_endpointslice_controller(ctx: ControllerContext) -> EndpointSliceController:
    return EndpointSliceController(ctx, workers=ctx.config.concurrent_endpoint_syncs)
