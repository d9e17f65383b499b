"""The service LB controller: LoadBalancer ingress addresses from a local pool.

tinykube's "cloud" is an address pool (``--lb-ip-range``, default
172.18.255.200-172.18.255.250). A ``type: LoadBalancer`` Service without a
``loadBalancerClass`` gets the ``service.kubernetes.io/load-balancer-cleanup`` finalizer,
one free address (its ``spec.loadBalancerIP`` when that is in the pool and free) and
``status.loadBalancer.ingress: [{ip, ipMode: VIP}]``; the address is released when the
Service is deleted or stops being a LoadBalancer. Addresses are only written into status;
nothing is ever sent to them. Events are upstream's EnsuringLoadBalancer,
EnsuredLoadBalancer, DeletingLoadBalancer and DeletedLoadBalancer.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.controllers.base import BaseController, ControllerContext

Obj = dict[str, Any]
NAME = "service-lb-controller"
FINALIZER = "service.kubernetes.io/load-balancer-cleanup"


def parse_range(text: str) -> list[str]:
    """``a.b.c.d-e.f.g.h``, ``a.b.c.d-h`` or a CIDR -> the addresses, in order."""
    text = text.strip()
    if "/" in text:
        return [str(ip) for ip in ipaddress.ip_network(text, strict=False).hosts()]
    first, _, last = text.partition("-")
    start = ipaddress.ip_address(first.strip())
    if not last:
        return [str(start)]
    last = last.strip()
    if "." not in last and ":" not in last:
        last = first.rsplit(".", 1)[0] + "." + last
    end = ipaddress.ip_address(last)
    if end < start:
        raise ValueError(f"invalid address range {text!r}: end before start")
    return [str(ipaddress.ip_address(i)) for i in range(int(start), int(end) + 1)]


class AddressPool:
    """Which pool address each Service (``ns/name``) holds."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.owner: dict[str, str] = {}  # ip -> service key

    def holder(self, key: str) -> str | None:
        return next((ip for ip, k in self.owner.items() if k == key), None)

    def claim(self, ip: str, key: str) -> bool:
        if ip not in self.addresses or self.owner.get(ip, key) != key:
            return False
        self.owner[ip] = key
        return True

    def allocate(self, key: str, wanted: str | None = None) -> str | None:
        held = self.holder(key)
        if held is not None:
            return held
        if wanted and self.claim(wanted, key):
            return wanted
        for ip in self.addresses:
            if ip not in self.owner:
                self.owner[ip] = key
                return ip
        return None

    def release(self, key: str) -> None:
        for ip in [ip for ip, k in self.owner.items() if k == key]:
            del self.owner[ip]


def wants_lb(svc: Obj) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass") and \
        meta.deletion_timestamp(svc) is None


def ingress_ips(svc: Obj) -> list[str]:
    lb = (svc.get("status") or {}).get("loadBalancer") or {}
    return [i["ip"] for i in lb.get("ingress") or [] if i.get("ip")]


class ServiceLBController(BaseController):
    """Assigns and releases LoadBalancer addresses."""

    def __init__(self, ctx: ControllerContext, addresses: list[str]) -> None:
        super().__init__(ctx, NAME, 1)  # one worker: allocation is never contended
        self.pool = AddressPool(addresses)
        self.svc_informer = ctx.informers.informer("services")
        self.services = ctx.client.resource("services")
        self.recorder = ctx.recorder(NAME)
        self.svc_informer.add_handlers(on_add=self._seen,
                                       on_update=lambda old, new: self._seen(new),
                                       on_delete=self._deleted)

    def _seen(self, svc: Obj) -> None:
        for ip in ingress_ips(svc):
            self.pool.claim(ip, meta.key(svc))  # survive restarts: keep what was handed out
        self.enqueue(meta.key(svc))

    def _deleted(self, svc: Obj) -> None:
        self.pool.release(meta.key(svc))

    async def sync(self, key: str) -> None:
        svc = self.svc_informer.cache.get(key)
        if svc is None:
            self.pool.release(key)
            return
        if wants_lb(svc):
            await self._ensure(key, svc)
        elif FINALIZER in meta.finalizers(svc) or (ingress_ips(svc) and self.pool.holder(key)):
            await self._teardown(key, svc)

    async def _ensure(self, key: str, svc: Obj) -> None:
        if FINALIZER not in meta.finalizers(svc):
            svc = await self._set_finalizers(svc, meta.finalizers(svc) + [FINALIZER])
            if svc is None:
                return
        wanted = (svc.get("spec") or {}).get("loadBalancerIP") or None
        ip = self.pool.allocate(key, wanted)
        if ip is None:
            self.recorder.event(svc, "Warning", "SyncLoadBalancerFailed",
                                "Error syncing load balancer: failed to ensure load balancer: "
                                "no addresses left in the pool")
            return
        if ingress_ips(svc) == [ip]:
            return
        self.recorder.event(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        body = copy.deepcopy(svc)
        body.setdefault("status", {})["loadBalancer"] = {"ingress": [{"ip": ip,
                                                                      "ipMode": "VIP"}]}
        try:
            await self.services.update(body, subresource="status")
        except ApiError as err:
            self.pool.release(key)
            if err.code != 404:
                raise
            return
        self.recorder.event(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")

    async def _teardown(self, key: str, svc: Obj) -> None:
        self.recorder.event(svc, "Normal", "DeletingLoadBalancer", "Deleting load balancer")
        self.pool.release(key)
        if ingress_ips(svc) and meta.deletion_timestamp(svc) is None:
            body = copy.deepcopy(svc)
            body.setdefault("status", {})["loadBalancer"] = {}
            try:
                svc = await self.services.update(body, subresource="status")
            except ApiError as err:
                if err.code != 404:
                    raise
                return
        if FINALIZER in meta.finalizers(svc):
            await self._set_finalizers(svc, [f for f in meta.finalizers(svc) if f != FINALIZER])
        self.recorder.event(svc, "Normal", "DeletedLoadBalancer", "Deleted load balancer")

    async def _set_finalizers(self, svc: Obj, finalizers: list[str]) -> Obj | None:
        try:
            return await self.services.patch(
                meta.name(svc), {"metadata": {"finalizers": finalizers or None,
                                              "resourceVersion": meta.resource_version(svc)}},
                namespace=meta.namespace(svc), patch_type="merge")
        except ApiError as err:
            if err.code == 404:
                return None
            raise


def new_service_lb_controller(ctx: ControllerContext) -> ServiceLBController:
    return ServiceLBController(ctx, parse_range(ctx.config.lb_ip_range))
