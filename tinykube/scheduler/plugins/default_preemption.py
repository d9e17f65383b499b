"""DefaultPreemption: when no node fits, find a node where evicting lower-priority pods
would make room, evict the fewest/least important of them and nominate the node.

Victim selection is a pure what-if on cloned NodeInfos and CycleState: remove every
lower-priority pod, check the pod fits, then reprieve victims from the most important down
while it still fits. The evictions themselves run in a task the scheduler owns; the pod
waits in the queue with ``status.nominatedNodeName`` until the victims are gone.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from tinykube.api.errors import ApiError
from tinykube.api import meta
from tinykube.scheduler.framework import (Code, CycleState, Diagnosis, PostFilterResult, Status,
                                          unresolvable, unschedulable)
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

log = logging.getLogger(__name__)

NAME = "DefaultPreemption"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_ELIGIBLE = "not eligible due to preemptionPolicy=Never."


def preemption_message(num_nodes: int, unhelpful: int, no_victims: int) -> str:
    parts = []
    if no_victims:
        parts.append(f"{no_victims} {NO_VICTIMS}")
    if unhelpful:
        parts.append(f"{unhelpful} {NOT_HELPFUL}")
    return f"preemption: 0/{num_nodes} nodes are available: {', '.join(sorted(parts))}."


def pick_one(candidates: list[tuple[NodeInfo, list[PodInfo]]]) -> tuple[NodeInfo, list[PodInfo]]:
    """Fewest-harm candidate: lowest top victim priority, lowest priority sum, fewest pods."""
    def harm(candidate: tuple[NodeInfo, list[PodInfo]]) -> tuple[int, int, int]:
        victims = candidate[1]
        top = max((v.priority for v in victims), default=-(2 ** 31))
        return top, sum(v.priority for v in victims), len(victims)
    return min(candidates, key=harm)


class DefaultPreemption:
    name = NAME

    def __init__(self, handle: Any, min_percentage: int = 10, min_absolute: int = 100) -> None:
        self.handle = handle
        self.min_percentage = min_percentage
        self.min_absolute = min_absolute

    def select_victims(self, state: CycleState, pod: PodInfo,
                       node: NodeInfo) -> list[PodInfo] | None:
        """The victims that make ``pod`` fit on ``node``, or None if none would."""
        fwk = self.handle
        trial = node.clone()
        st = state.clone()
        lower = [p for p in trial.pods.values() if p.priority < pod.priority]
        if not lower:
            return None
        for victim in lower:
            trial.remove_pod(victim.key)
            fwk.run_pre_filter_remove_pod(st, pod, victim, trial)
        if fwk.run_filter(st, pod, trial) is not None:
            return None
        victims = []
        for candidate in sorted(lower, key=lambda p: -p.priority):
            trial.add_pod(candidate)
            fwk.run_pre_filter_add_pod(st, pod, candidate, trial)
            if fwk.run_filter(st, pod, trial) is not None:
                trial.remove_pod(candidate.key)
                fwk.run_pre_filter_remove_pod(st, pod, candidate, trial)
                victims.append(candidate)
        return victims

    def post_filter(self, state: CycleState, pod: PodInfo,
                    diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status | None]:
        if (pod.spec.get("preemptionPolicy") or "PreemptLowerPriority") == "Never":
            return None, unresolvable(NOT_ELIGIBLE)
        cache = self.handle.cache
        num_nodes = len(cache.node_list())
        potential = [cache.nodes[name] for name, status in diagnosis.node_statuses.items()
                     if status.code == Code.UNSCHEDULABLE and name in cache.nodes
                     and cache.nodes[name].node is not None]
        unhelpful = num_nodes - len(potential)
        if not potential:
            return None, unresolvable(preemption_message(num_nodes, unhelpful, 0))
        limit = max(num_nodes * self.min_percentage // 100, self.min_absolute)
        offset = random.randrange(len(potential))
        candidates: list[tuple[NodeInfo, list[PodInfo]]] = []
        for i in range(len(potential)):
            node = potential[(offset + i) % len(potential)]
            victims = self.select_victims(state, pod, node)
            if victims is not None:
                candidates.append((node, victims))
                if len(candidates) >= limit:
                    break
        if not candidates:
            return None, unschedulable(preemption_message(num_nodes, unhelpful,
                                                          len(potential)))
        node, victims = pick_one(candidates)
        if victims:
            self.handle.spawn(self.evict(pod, node.name, victims),
                              f"preempt-{pod.key}")
        return PostFilterResult(node.name), None

    async def evict(self, pod: PodInfo, node: str, victims: list[PodInfo]) -> None:
        """Mark each victim DisruptionTarget, delete it and record a Preempted event."""
        pods = self.handle.client.resource("pods")
        for victim in victims:
            condition = {"type": "DisruptionTarget", "status": "True",
                         "reason": "PreemptionByScheduler",
                         "message": f"{self.handle.profile_name}: preempting to accommodate "
                                    "a higher priority pod",
                         "lastTransitionTime": meta.now()}
            try:
                await pods.patch(victim.name, {"status": {"conditions": [condition]}},
                                 namespace=victim.namespace, subresource="status")
                await pods.delete(victim.name, namespace=victim.namespace)
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("preempting %s for %s failed: %s", victim.key, pod.key, exc)
                continue
            self.handle.recorder.event(victim.pod, "Normal", "Preempted",
                                       f"Preempted by pod {pod.uid} on node {node}")


def new(args: dict[str, Any], handle: Any) -> DefaultPreemption:
    return DefaultPreemption(handle, int(args.get("minCandidateNodesPercentage", 10)),
                             int(args.get("minCandidateNodesAbsolute", 100)))
