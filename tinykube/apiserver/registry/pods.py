"""Pods: initial status, graceful deletion on nodes, and the field selectors kubelets use."""

from __future__ import annotations

from tinykube.api import pods
from tinykube.apiserver.registry.base import Strategy

DEFAULT_TERMINATION_GRACE_SECONDS = 30


class PodStrategy(Strategy):
    return_deleted_object = True

    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        status = {"phase": "Pending"}
        status["qosClass"] = pods.qos_class(obj)
        obj["status"] = status

    def graceful_delete_seconds(self, obj: dict, requested: int | None) -> int:
        """A pod bound to a running node gets its grace period so the kubelet can stop it;
        an unscheduled or finished pod goes at once (upstream's CheckGracefulDelete)."""
        if not pods.node_name(obj) or pods.is_terminal(obj):
            return 0
        if requested is not None:
            return max(int(requested), 0)
        spec_grace = pods.spec(obj).get("terminationGracePeriodSeconds")
        if spec_grace is None:
            return DEFAULT_TERMINATION_GRACE_SECONDS
        return max(int(spec_grace), 0)
