"""Pods: initial status, graceful deletion on nodes, and the field selectors kubelets use."""

from __future__ import annotations

from tinykube.api import pods
from tinykube.api.meta import json_copy
from tinykube.apiserver.registry.base import Strategy

DEFAULT_TERMINATION_GRACE_SECONDS = 30


class PodStrategy(Strategy):
    return_deleted_object = True

    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        status = {"phase": "Pending"}
        status["qosClass"] = pods.qos_class(obj)
        obj["status"] = status

    def prepare_for_ephemeral_containers(self, new: dict, old: dict) -> dict:
        """What a pods/ephemeralcontainers write stores: the old pod with the new
        ``spec.ephemeralContainers``; every other change is dropped, as upstream's. The spec is
        a copy, as defaulting the new containers walks it."""
        spec = {k: json_copy(v) for k, v in pods.spec(old).items() if k != "ephemeralContainers"}
        if pods.spec(new).get("ephemeralContainers") is not None:
            spec["ephemeralContainers"] = pods.spec(new)["ephemeralContainers"]
        return {**old, "spec": spec}

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
