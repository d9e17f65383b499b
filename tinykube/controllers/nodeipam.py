"""The node IPAM controller: a pod CIDR per node (``--allocate-node-cidrs``).

Nodes get consecutive ``/--node-cidr-mask-size`` subnets of ``--cluster-cidr`` (default
10.244.0.0/16 in /24s) in ``spec.podCIDR`` and ``spec.podCIDRs``, as upstream's range
allocator. CIDRs already on nodes are reserved before anything is allocated (the workers
only start after the informers synced), and a deleted node's CIDR is released. One worker
allocates, so two nodes can never be handed the same range.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError

from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext

Obj = dict[str, Any]
NAME = "node-ipam-controller"


class CIDRSet:
    """The subnets of a cluster CIDR, each free or taken."""

    def __init__(self, cluster_cidr: str, mask_size: int) -> None:
        self.network = ipaddress.ip_network(cluster_cidr, strict=False)
        if mask_size < self.network.prefixlen:
            raise ValueError(f"node CIDR mask size {mask_size} is smaller than the cluster "
                             f"CIDR's {self.network.prefixlen}")
        self.mask_size = mask_size
        self.size = 2 ** (mask_size - self.network.prefixlen)
        self.taken: dict[int, str] = {}  # subnet index -> node name

    def _index(self, cidr: str) -> int | None:
        try:
            subnet = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if subnet.version != self.network.version or not subnet.subnet_of(self.network):
            return None
        step = 2 ** (self.network.max_prefixlen - self.mask_size)
        return (int(subnet.network_address) - int(self.network.network_address)) // step

    def _cidr(self, index: int) -> str:
        step = 2 ** (self.network.max_prefixlen - self.mask_size)
        base = int(self.network.network_address) + index * step
        return f"{ipaddress.ip_address(base)}/{self.mask_size}"

    def occupy(self, cidr: str, node: str) -> None:
        index = self._index(cidr)
        if index is not None:
            self.taken[index] = node

    def release(self, node: str) -> None:
        for index, owner in list(self.taken.items()):
            if owner == node:
                del self.taken[index]

    def allocate(self, node: str) -> str | None:
        """The first free subnet, now taken by ``node``; None when the range is full."""
        for index in range(self.size):
            if index not in self.taken:
                self.taken[index] = node
                return self._cidr(index)
        return None


class NodeIpamController(BaseController):
    """Assigns every node a pod CIDR."""

    def __init__(self, ctx: ControllerContext, cluster_cidr: str, mask_size: int,
                 allocate: bool = True) -> None:
        super().__init__(ctx, NAME, 1)
        self.allocate = allocate
        self.cidrs = CIDRSet(cluster_cidr, mask_size)
        self.node_informer = ctx.informers.informer("nodes")
        self.nodes = ctx.client.resource("nodes")
        self.recorder = ctx.recorder(NAME)
        self.node_informer.add_handlers(on_add=self._node_seen,
                                        on_update=lambda old, new: self._node_seen(new),
                                        on_delete=self._node_deleted)

    def _node_seen(self, node: Obj) -> None:
        cidr = util.spec(node).get("podCIDR")
        if cidr:
            self.cidrs.occupy(cidr, meta.name(node))
        else:
            self.enqueue(meta.name(node))

    def _node_deleted(self, node: Obj) -> None:
        self.cidrs.release(meta.name(node))

    async def sync(self, name: str) -> None:
        node = self.node_informer.cache.get(name)
        if not self.allocate or node is None or util.spec(node).get("podCIDR"):
            return
        cidr = self.cidrs.allocate(name)
        if cidr is None:
            self.recorder.event(node, "Normal", "CIDRNotAvailable",
                                f"Node {name} status is now: CIDRNotAvailable")
            return
        try:
            await self.nodes.patch(name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}},
                                   patch_type="merge")
        except ApiError as err:
            self.cidrs.release(name)
            if err.code != 404:
                raise


def new_node_ipam_controller(ctx: ControllerContext) -> NodeIpamController:
    cfg = ctx.config
    return NodeIpamController(ctx, cfg.cluster_cidr, cfg.node_cidr_mask_size,
                              allocate=cfg.allocate_node_cidrs)
