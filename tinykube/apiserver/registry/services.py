"""Services: ClusterIP and NodePort allocation, kept on update and released on delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tinykube.api import errors, meta
from tinykube.api.errors import Cause
from tinykube.apiserver.registry.allocator import AlreadyAllocated, NotInRange, RangeFull
from tinykube.apiserver.registry.base import Strategy

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _spec(obj: dict) -> dict[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def service_type(obj: dict) -> str:
    return _spec(obj).get("type") or "ClusterIP"


def wants_cluster_ip(obj: dict) -> bool:
    return service_type(obj) != "ExternalName"


class ServiceStrategy(Strategy):
    return_deleted_object = True

    def reset_status(self, obj: dict) -> None:
        obj["status"] = {"loadBalancer": {}}

    async def before_create(self, server: "APIServer", obj: dict, dry_run: bool) -> None:
        spec = _spec(obj)
        spec.setdefault("type", "ClusterIP")
        allocated_ip = ""
        try:
            if wants_cluster_ip(obj):
                allocated_ip = await self._allocate_ip(server, obj, dry_run)
            await self._allocate_node_ports(server, obj, None, dry_run)
        except BaseException:
            if allocated_ip and not dry_run:
                await server.cluster_ips.release(allocated_ip)
            raise

    async def undo_create(self, server: "APIServer", obj: dict) -> None:
        await self.after_delete(server, obj)

    async def before_update(self, server: "APIServer", new: dict, old: dict,
                            dry_run: bool) -> None:
        """Keep the allocated ClusterIP and NodePorts a client left out (as upstream's
        patchAllocatedValues), allocate new NodePorts and release dropped ones."""
        new_spec, old_spec = _spec(new), _spec(old)
        new_spec.setdefault("type", "ClusterIP")
        if wants_cluster_ip(new) and wants_cluster_ip(old):
            if not new_spec.get("clusterIP") and old_spec.get("clusterIP"):
                new_spec["clusterIP"] = old_spec["clusterIP"]
            if not new_spec.get("clusterIPs") and old_spec.get("clusterIPs"):
                new_spec["clusterIPs"] = old_spec["clusterIPs"]
            for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
                if key not in new_spec and key in old_spec:
                    new_spec[key] = old_spec[key]
        elif wants_cluster_ip(new) and not wants_cluster_ip(old):
            await self._allocate_ip(server, new, dry_run)
        if service_type(new) in NODE_PORT_TYPES:
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in old_spec.get("ports") or [] if p.get("nodePort")}
            for port in new_spec.get("ports") or []:
                previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                if not port.get("nodePort") and previous:
                    port["nodePort"] = previous
        await self._allocate_node_ports(server, new, old, dry_run)
        if dry_run:
            return
        kept = {p.get("nodePort") for p in new_spec.get("ports") or []
                if service_type(new) in NODE_PORT_TYPES}
        for port in old_spec.get("ports") or []:
            if port.get("nodePort") and port["nodePort"] not in kept:
                await server.node_ports.release(port["nodePort"])
        if wants_cluster_ip(old) and not wants_cluster_ip(new):
            await server.cluster_ips.release(old_spec.get("clusterIP") or "")

    async def after_delete(self, server: "APIServer", obj: dict) -> None:
        spec = obj.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if ip and ip != "None":
            await server.cluster_ips.release(ip)
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                await server.node_ports.release(int(port["nodePort"]))

    async def _allocate_ip(self, server: "APIServer", obj: dict, dry_run: bool) -> str:
        """Returns the address it allocated ("" for headless or none needed)."""
        spec = _spec(obj)
        requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0]
        if requested == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            _families(spec)
            return ""
        try:
            if requested:
                await server.cluster_ips.allocate(requested, dry_run)
                address = requested
            else:
                address = await server.cluster_ips.allocate_next(dry_run)
        except AlreadyAllocated:
            raise self._invalid(obj, Cause.invalid(
                "spec.clusterIPs", [requested],
                f"failed to allocate IP {requested}: provided IP is already allocated")) \
                from None
        except (NotInRange, ValueError):
            raise self._invalid(obj, Cause.invalid(
                "spec.clusterIPs", [requested],
                f"failed to allocate IP {requested}: the provided IP ({requested}) is not in "
                f"the valid range. The range of valid IPs is "
                f"{server.cluster_ips.network}")) from None
        except RangeFull:
            raise errors.internal_error("failed to allocate a serviceIP: range is full") \
                from None
        spec["clusterIP"], spec["clusterIPs"] = address, [address]
        _families(spec)
        return address

    async def _allocate_node_ports(self, server: "APIServer", obj: dict, old: dict | None,
                                   dry_run: bool) -> None:
        if service_type(obj) not in NODE_PORT_TYPES:
            for port in _spec(obj).get("ports") or []:
                port.pop("nodePort", None)
            return
        owned = {p.get("nodePort") for p in ((old or {}).get("spec") or {}).get("ports") or []
                 if p.get("nodePort")} if old and service_type(old) in NODE_PORT_TYPES else set()
        taken: list[int] = []
        try:
            for i, port in enumerate(_spec(obj).get("ports") or []):
                requested = port.get("nodePort")
                if requested and requested in owned:
                    continue
                try:
                    if requested:
                        await server.node_ports.allocate(int(requested), dry_run)
                        taken.append(int(requested))
                    else:
                        port["nodePort"] = await server.node_ports.allocate_next(dry_run)
                        taken.append(port["nodePort"])
                except AlreadyAllocated:
                    raise self._invalid(obj, Cause.invalid(
                        f"spec.ports[{i}].nodePort", requested,
                        "provided port is already allocated")) from None
                except NotInRange:
                    raise self._invalid(obj, Cause.invalid(
                        f"spec.ports[{i}].nodePort", requested,
                        f"provided port is not in the valid range. The range of valid ports "
                        f"is {server.node_ports.base}-{server.node_ports.last}")) from None
        except BaseException:
            if not dry_run:
                for port_number in taken:
                    await server.node_ports.release(port_number)
            raise

    def _invalid(self, obj: dict, cause: Cause) -> errors.ApiError:
        return errors.invalid(self.info, meta.name(obj), [cause])


def _families(spec: dict) -> None:
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
