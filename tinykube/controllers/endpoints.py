"""The endpoints controller: an Endpoints object per selector Service, from its pods.

A pod with an IP that the Service selects becomes an address (ready, or in
``notReadyAddresses`` when its Ready condition is not True and the Service does not
``publishNotReadyAddresses``); each Service port resolves its ``targetPort`` by number or
by the pod's named container port; addresses with the same resolved ports share a subset,
as upstream's RepackSubsets. A Service whose selector matches nothing has an Endpoints
object with no subsets; deleting the Service deletes it. Services without a selector are
left to whoever manages their Endpoints.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError, ignore_not_found
from tinykube.api.selectors import LabelSelector

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext, namespace_index

Obj = dict[str, Any]
NAME = "endpoints-controller"
HEADLESS_LABEL = "service.kubernetes.io/headless"


# --- shared with the endpointslice controller ----------------------------------------------

def service_selector(svc: Obj) -> LabelSelector | None:
    """The Service's pod selector, or None when it has none (endpoints managed elsewhere)."""
    sel = util.spec(svc).get("selector")
    if not sel:
        return None
    return LabelSelector.from_set(sel)


def pod_ip(pod: Obj) -> str:
    st = util.status(pod)
    return st.get("podIP") or next((p.get("ip") for p in st.get("podIPs") or []
                                    if p.get("ip")), "")


def should_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Upstream ShouldPodBeInEndpoints: has an IP, not finished, not terminating unless asked."""
    if util.pod_phase(pod) in ("Succeeded", "Failed"):
        return False
    if not include_terminating and meta.deletion_timestamp(pod) is not None:
        return False
    return bool(pod_ip(pod))


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The container port a Service port targets on this pod (None when it has none)."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    for container in util.spec(pod).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def target_ref(pod: Obj) -> Obj:
    return {"kind": "Pod", "namespace": meta.namespace(pod), "name": meta.name(pod),
            "uid": meta.uid(pod)}


def pod_hostname(pod: Obj, svc: Obj) -> str | None:
    """A pod's hostname is published when its subdomain names this Service."""
    spec = util.spec(pod)
    if spec.get("hostname") and spec.get("subdomain") == meta.name(svc) and \
            meta.namespace(pod) == meta.namespace(svc):
        return spec["hostname"]
    return None


def endpoint_port(svc_port: Obj, number: int) -> Obj:
    out: Obj = {"port": number, "protocol": svc_port.get("protocol") or "TCP"}
    if svc_port.get("name"):
        out["name"] = svc_port["name"]
    if svc_port.get("appProtocol"):
        out["appProtocol"] = svc_port["appProtocol"]
    return out


def resolved_ports(pod: Obj, svc: Obj) -> list[Obj] | None:
    """The pod's endpoint ports for every Service port it serves (None: serves none)."""
    ports = util.spec(svc).get("ports") or []
    if not ports:
        return []
    out = []
    for svc_port in ports:
        number = find_port(pod, svc_port)
        if number is not None:
            out.append(endpoint_port(svc_port, number))
    return out or None


def is_headless(svc: Obj) -> bool:
    return util.spec(svc).get("clusterIP") == "None"


# --- Endpoints ---------------------------------------------------------------------------

def _port_key(ports: list[Obj]) -> tuple:
    return tuple(sorted((p.get("name", ""), p["port"], p["protocol"]) for p in ports))


def build_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """Addresses grouped by identical resolved port sets, sorted (upstream RepackSubsets)."""
    tolerate_unready = bool(util.spec(svc).get("publishNotReadyAddresses"))
    groups: dict[tuple, Obj] = {}
    for pod in pods:
        if not should_be_in_endpoints(pod, include_terminating=tolerate_unready):
            continue
        ports = resolved_ports(pod, svc)
        if ports is None:
            continue
        if not ports and not is_headless(svc):
            continue  # a Service with no ports publishes addresses only when headless
        address: Obj = {"ip": pod_ip(pod), "targetRef": target_ref(pod)}
        if util.spec(pod).get("nodeName"):
            address["nodeName"] = util.spec(pod)["nodeName"]
        hostname = pod_hostname(pod, svc)
        if hostname:
            address["hostname"] = hostname
        group = groups.setdefault(_port_key(ports), {"ports": ports, "ready": [],
                                                      "notReady": []})
        ready = tolerate_unready or (util.is_pod_ready(pod)
                                     and meta.deletion_timestamp(pod) is None)
        group["ready" if ready else "notReady"].append(address)
    subsets = []
    for key in sorted(groups):
        group = groups[key]
        subset: Obj = {}
        if group["ready"]:
            subset["addresses"] = sorted(group["ready"], key=lambda a: a["ip"])
        if group["notReady"]:
            subset["notReadyAddresses"] = sorted(group["notReady"], key=lambda a: a["ip"])
        if group["ports"]:
            subset["ports"] = sorted(group["ports"], key=lambda p: (p.get("name", ""), p["port"]))
        subsets.append(subset)
    return subsets


def selecting_services(services: Any, pod: Obj) -> list[str]:
    """Keys of the Services (a cache indexed by namespace) whose selector matches ``pod``."""
    out = []
    for svc in services.by_index("namespace", meta.namespace(pod)):
        sel = service_selector(svc)
        if sel is not None and sel.matches(meta.labels(pod)):
            out.append(meta.key(svc))
    return out


def enqueue_selecting_services(pod_informer: Any, services: Any,
                               enqueue: Callable[[str], None]) -> None:
    """Route pod events to the Services selecting the pod (and, when its labels changed,
    to those that selected it before); updates that change nothing are skipped."""
    def changed(pod: Obj) -> None:
        for key in selecting_services(services, pod):
            enqueue(key)

    def updated(old: Obj, new: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(new):
            return
        keys = set(selecting_services(services, new))
        if meta.labels(old) != meta.labels(new):
            keys |= set(selecting_services(services, old))
        for key in keys:
            enqueue(key)

    pod_informer.add_handlers(on_add=changed, on_update=updated, on_delete=changed)


def endpoints_labels(svc: Obj) -> dict[str, str]:
    labels = dict(meta.labels(svc))
    if is_headless(svc):
        labels[HEADLESS_LABEL] = ""
    return labels


class EndpointsController(BaseController):
    """Keeps each selector Service's Endpoints equal to its selected pods."""

    def __init__(self, ctx: ControllerContext, workers: int = 5) -> None:
        super().__init__(ctx, NAME, workers)
        self.svc_informer = ctx.informers.informer("services")
        self.pod_informer = ctx.informers.informer("pods")
        self.ep_informer = ctx.informers.informer("endpoints")
        namespace_index(self.pod_informer)
        namespace_index(self.svc_informer)
        self.endpoints = ctx.client.resource("endpoints")
        self.svc_informer.add_handlers(on_add=self._svc_changed,
                                       on_update=lambda old, new: self._svc_changed(new),
                                       on_delete=self._svc_changed)
        enqueue_selecting_services(self.pod_informer, self.svc_informer.cache, self.enqueue)
        self.ep_informer.add_handlers(on_delete=self._svc_changed)

    def _svc_changed(self, obj: Obj) -> None:
        self.enqueue(meta.key(obj))

    async def sync(self, key: str) -> None:
        namespace, name = meta.split_key(key)
        svc = self.svc_informer.cache.get(key)
        if svc is None:
            with ignore_not_found():
                await self.endpoints.delete(name, namespace=namespace)
            return
        selector = service_selector(svc)
        if selector is None:
            return
        pods = [p for p in self.pod_informer.cache.by_index("namespace", namespace)
                if selector.matches(meta.labels(p))]
        subsets = build_subsets(svc, pods)
        labels = endpoints_labels(svc)
        current = self.ep_informer.cache.get(key)
        if current is not None and (current.get("subsets") or []) == subsets and \
                meta.labels(current) == labels:
            return
        await self._write(svc, current, subsets, labels)

    async def _write(self, svc: Obj, current: Obj | None, subsets: list[Obj],
                     labels: dict[str, str]) -> None:
        namespace, name = meta.namespace(svc), meta.name(svc)
        if current is None:
            body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "namespace": namespace, "labels": labels},
                         "subsets": subsets}
            try:
                await self.endpoints.create(body, namespace=namespace)
            except ApiError as err:
                if err.code == 403 and err.reason == "Forbidden":
                    return  # namespace terminating
                raise
            return
        body = copy.deepcopy(current)
        body["subsets"] = subsets
        body["metadata"]["labels"] = labels
        if not subsets:
            body.pop("subsets")
        await self.endpoints.update(body)


def new_endpoints_controller(ctx: ControllerContext) -> EndpointsController:
    return EndpointsController(ctx, workers=ctx.config.concurrent_endpoint_syncs)
