"""Nodes: cluster-scoped; a node registers with the status its kubelet already knows."""

from __future__ import annotations

from tinykube.apiserver.registry.base import Strategy


class NodeStrategy(Strategy):
    def reset_status(self, obj: dict) -> None:
        """Upstream lets a node be created with its status (kubelet registration)."""
