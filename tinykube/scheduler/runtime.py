"""The framework runtime: one profile's plugins, run extension point by extension point.

``Framework`` builds the profile's plugins from the registry and is also the *handle*
plugins receive (the cache, the API client, the event recorder, and ``spawn`` for the
asynchronous work some hooks start). ``find_nodes`` is the scheduling algorithm: PreFilter,
Filter over a round-robin sample of nodes (upstream's percentageOfNodesToScore), PreScore,
Score with weights and normalisation, then the highest score wins (ties at random).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tinykube.scheduler.framework import (Code, CycleState, Diagnosis, PostFilterResult,
                                          PreFilterResult, Status, unresolvable)
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
NO_NODE_AVAILABLE = "0/{} nodes are available"
FILTERED_BY_PREFILTER = "node is filtered out by the prefilter result"


def num_feasible_nodes_to_find(total: int, percentage: int = 0) -> int:
    """How many feasible nodes to look for before scoring (upstream's adaptive rule)."""
    if total < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return total
    adaptive = percentage
    if adaptive <= 0:
        adaptive = BASE_PERCENTAGE_OF_NODES_TO_SCORE - total // 125
        adaptive = max(adaptive, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(total * adaptive // 100, MIN_FEASIBLE_NODES_TO_FIND)


def reasons_histogram(statuses: dict[str, Status]) -> str:
    """``1 Insufficient cpu, 2 node(s) didn't match ...`` sorted as upstream's FitError."""
    counts: dict[str, int] = {}
    for status in statuses.values():
        for reason in status.reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def fit_error_message(num_nodes: int, diagnosis: Diagnosis) -> str:
    """The FailedScheduling message: ``0/3 nodes are available: <reasons>. <postfilter>.``"""
    msg = NO_NODE_AVAILABLE.format(num_nodes) + ":"
    if diagnosis.pre_filter_msg:
        msg += f" {diagnosis.pre_filter_msg}."
    else:
        msg += f" {reasons_histogram(diagnosis.node_statuses)}."
    if diagnosis.post_filter_msg:
        # upstream formats it with " %v." too, hence the doubled period after preemption's
        # own sentence ("... for scheduling..")
        msg += f" {diagnosis.post_filter_msg}."
    return msg


@dataclass
class ScheduleResult:
    """The outcome of one scheduling attempt (no node = unschedulable, see diagnosis)."""

    node: str | None
    evaluated: int = 0
    feasible: int = 0
    num_nodes: int = 0
    diagnosis: Diagnosis = field(default_factory=Diagnosis)
    filter_results: dict[str, dict[str, str]] | None = None
    score_results: dict[str, dict[str, int]] | None = None
    error: str = ""

    @property
    def message(self) -> str:
        if self.error:
            return self.error
        if self.num_nodes == 0 and not self.diagnosis.pre_filter_msg:
            return "no nodes available to schedule pods"
        return fit_error_message(self.num_nodes, self.diagnosis)


@dataclass
class Services:
    """What the scheduler lends every profile's plugins."""

    client: Any
    cache: Any
    recorder: Any
    spawn: Callable[[Awaitable[None], str], None]
    scheduler_name_of: Callable[[dict[str, Any]], str] = lambda pod: ""


class Framework:
    """A profile: its plugins per extension point, and the algorithm that runs them."""

    def __init__(self, profile: Any, services: Services,
                 registry: dict[str, Callable[[dict[str, Any], Any], Any]]) -> None:
        self.profile_name: str = profile.scheduler_name
        self.percentage_of_nodes_to_score: int = profile.percentage_of_nodes_to_score or 0
        self.client = services.client
        self.cache = services.cache
        self.recorder = services.recorder
        self.spawn = services.spawn
        self.plugins: dict[str, Any] = {}
        for name in profile.all_plugin_names():
            factory = registry.get(name)
            if factory is None:
                raise ValueError(f'plugin "{name}" does not exist in the registry')
            self.plugins[name] = factory(profile.plugin_config.get(name) or {}, self)

        def at(point: str, method: str) -> list[Any]:
            out = []
            for ref in profile.plugins.get(point, ()):
                plugin = self.plugins[ref.name]
                if not hasattr(plugin, method):
                    raise ValueError(f'plugin "{ref.name}" does not extend {point}')
                out.append(plugin)
            return out

        self.pre_filter_plugins = at("preFilter", "pre_filter")
        self.filter_plugins = at("filter", "filter")
        self.post_filter_plugins = at("postFilter", "post_filter")
        self.pre_score_plugins = at("preScore", "pre_score")
        self.score_plugins = [(self.plugins[r.name], r.weight or 1)
                              for r in profile.plugins.get("score", ())]
        for plugin, _ in self.score_plugins:
            if not hasattr(plugin, "score"):
                raise ValueError(f'plugin "{plugin.name}" does not extend score')
        self.reserve_plugins = at("reserve", "reserve")
        self.permit_plugins = at("permit", "permit")
        self.pre_bind_plugins = at("preBind", "pre_bind")
        self.bind_plugins = at("bind", "bind")
        self.post_bind_plugins = at("postBind", "post_bind")

    # -- filter --------------------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: PodInfo,
                       nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        result: PreFilterResult | None = None
        for plugin in self.pre_filter_plugins:
            res, status = plugin.pre_filter(state, pod, nodes)
            if status is not None:
                if status.code == Code.SKIP:
                    state.skip_filter.add(plugin.name)
                    continue
                return None, status.with_plugin(plugin.name)
            if res is not None:
                result = res if result is None else result.merge(res)
        state["__filters"] = [p.filter for p in self.filter_plugins
                              if p.name not in state.skip_filter]
        state["__filter_names"] = [p.name for p in self.filter_plugins
                                   if p.name not in state.skip_filter]
        return result, None

    def run_filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """The first failing active filter's status, or None when the node fits."""
        for check in state["__filters"]:
            status = check(state, pod, node)
            if status is not None:
                return status
        return None

    def run_filter_all(self, state: CycleState, pod: PodInfo,
                       node: NodeInfo) -> dict[str, str]:
        """Every active filter's verdict (for --explain)."""
        out = {}
        for name, check in zip(state["__filter_names"], state["__filters"]):
            status = check(state, pod, node)
            out[name] = "passed" if status is None else status.message
        return out

    def run_pre_filter_remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                                  node: NodeInfo) -> None:
        for plugin in self.pre_filter_plugins:
            if plugin.name not in state.skip_filter and hasattr(plugin, "remove_pod"):
                plugin.remove_pod(state, pod, removed, node)

    def run_pre_filter_add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                               node: NodeInfo) -> None:
        for plugin in self.pre_filter_plugins:
            if plugin.name not in state.skip_filter and hasattr(plugin, "add_pod"):
                plugin.add_pod(state, pod, added, node)

    def run_post_filter(self, state: CycleState, pod: PodInfo,
                        diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status | None]:
        last: Status | None = None
        for plugin in self.post_filter_plugins:
            result, status = plugin.post_filter(state, pod, diagnosis)
            if status is None or status.code == Code.SUCCESS:
                return result, None
            last = status.with_plugin(plugin.name)
            if status.code == Code.ERROR:
                break
        return None, last

    # -- score ---------------------------------------------------------------------------

    def run_pre_score(self, state: CycleState, pod: PodInfo,
                      nodes: list[NodeInfo]) -> Status | None:
        for plugin in self.pre_score_plugins:
            status = plugin.pre_score(state, pod, nodes)
            if status is not None:
                if status.code == Code.SKIP:
                    state.skip_score.add(plugin.name)
                    continue
                return status.with_plugin(plugin.name)
        return None

    def run_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                  explain: bool = False) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """Weighted, normalised totals per node (and per-plugin scores when explaining)."""
        totals = dict.fromkeys((n.name for n in nodes), 0)
        per_plugin: dict[str, dict[str, int]] = {}
        for plugin, weight in self.score_plugins:
            if plugin.name in state.skip_score:
                continue
            score = plugin.score
            normalize = getattr(plugin, "normalize_score", None)
            if normalize is None and not explain:
                for n in nodes:  # the hot path: no intermediate dict
                    totals[n.name] += score(state, pod, n) * weight
                continue
            scores = {n.name: score(state, pod, n) for n in nodes}
            if normalize is not None:
                normalize(state, pod, scores)
            for name, value in scores.items():
                totals[name] += value * weight
            if explain:
                per_plugin[plugin.name] = {k: v * weight for k, v in scores.items()}
        return totals, per_plugin

    # -- the algorithm -------------------------------------------------------------------

    def find_nodes(self, state: CycleState, pod: PodInfo, start_index: int = 0,
                   explain: bool = False) -> tuple[ScheduleResult, int]:
        """Pick a node for ``pod``; returns the result and the next round-robin start."""
        all_nodes = self.cache.node_list()
        total = len(all_nodes)
        result = ScheduleResult(None, num_nodes=total)
        if total == 0:
            return result, start_index
        pre_result, status = self.run_pre_filter(state, pod, all_nodes)
        if status is not None:
            if status.code == Code.ERROR:
                result.error = status.message
                return result, start_index
            result.diagnosis.pre_filter_msg = status.message
            result.diagnosis.unschedulable_plugins.add(status.plugin)
            result.diagnosis.node_statuses = dict.fromkeys((n.name for n in all_nodes), status)
            return result, start_index
        candidates = all_nodes
        statuses = result.diagnosis.node_statuses
        if pre_result is not None and pre_result.node_names is not None:
            candidates = [n for n in all_nodes if n.name in pre_result.node_names]
            excluded = unresolvable(FILTERED_BY_PREFILTER)
            for n in all_nodes:
                if n.name not in pre_result.node_names:
                    statuses[n.name] = excluded
            start_index = 0
        feasible, next_index = self._filter_sample(state, pod, candidates, start_index,
                                                   statuses, explain)
        result.evaluated = len(statuses) + len(feasible)
        result.feasible = len(feasible)
        for status in statuses.values():
            if status.plugin:
                result.diagnosis.unschedulable_plugins.add(status.plugin)
        if explain:
            result.filter_results = {n.name: self.run_filter_all(state, pod, n)
                                     for n in candidates[:200]}
        if not feasible:
            return result, next_index
        if len(feasible) == 1 and not explain:
            result.node = feasible[0].name
            return result, next_index
        status = self.run_pre_score(state, pod, feasible)
        if status is not None:
            result.error = status.message
            return result, next_index
        totals, per_plugin = self.run_score(state, pod, feasible, explain)
        result.node = select_host(totals)
        if explain:
            ranked = sorted(totals, key=lambda n: -totals[n])[:50]
            result.score_results = {
                n: {**{p: s[n] for p, s in per_plugin.items()}, "total": totals[n]}
                for n in ranked}
        return result, next_index

    def _filter_sample(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                       start: int, statuses: dict[str, Status],
                       explain: bool) -> tuple[list[NodeInfo], int]:
        count = len(nodes)
        want = count if explain else num_feasible_nodes_to_find(
            count, self.percentage_of_nodes_to_score)
        feasible: list[NodeInfo] = []
        filters = state["__filters"]
        nominated = (pod.pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            for ni in nodes:
                if ni.name == nominated:
                    if self.run_filter(state, pod, ni) is None and not explain:
                        return [ni], start
                    break
        start %= count
        processed = 0
        append = feasible.append
        rotated = itertools.chain(itertools.islice(nodes, start, None),
                                  itertools.islice(nodes, 0, start))
        if len(filters) == 1:  # the common cycle: only NodeResourcesFit is active
            only = filters[0]
            for ni in rotated:
                processed += 1
                status = only(state, pod, ni)
                if status is not None:
                    statuses[ni.name] = status
                else:
                    append(ni)
                    if len(feasible) >= want:
                        break
            return feasible, (start + processed) % count
        for ni in rotated:
            processed += 1
            for check in filters:
                status = check(state, pod, ni)
                if status is not None:
                    statuses[ni.name] = status
                    break
            else:
                append(ni)
                if len(feasible) >= want:
                    break
        return feasible, (start + processed) % count

    # -- reserve, permit, bind -----------------------------------------------------------

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for plugin in self.reserve_plugins:
            status = plugin.reserve(state, pod, node)
            if status is not None:
                return status.with_plugin(plugin.name)
        return None

    def run_unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in reversed(self.reserve_plugins):
            plugin.unreserve(state, pod, node)

    def run_permit(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for plugin in self.permit_plugins:
            status, _timeout = plugin.permit(state, pod, node)
            if status is not None and status.code != Code.SUCCESS:
                # Waiting permits are not supported: treat Wait as a rejection.
                return status.with_plugin(plugin.name)
        return None

    async def run_pre_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for plugin in self.pre_bind_plugins:
            status = await plugin.pre_bind(state, pod, node)
            if status is not None:
                return status.with_plugin(plugin.name)
        return None

    async def run_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for plugin in self.bind_plugins:
            status = await plugin.bind(state, pod, node)
            if status is not None and status.code == Code.SKIP:
                continue
            return None if status is None else status.with_plugin(plugin.name)
        return Status(Code.ERROR, ("no bind plugin bound the pod",))

    def run_post_bind(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for plugin in self.post_bind_plugins:
            plugin.post_bind(state, pod, node)


def select_host(totals: dict[str, int]) -> str:
    """The highest-scoring node; ties are broken uniformly at random."""
    best = max(totals.values())
    return random.choice([name for name, score in totals.items() if score == best])


__all__ = ["Framework", "ScheduleResult", "Services", "fit_error_message",
           "num_feasible_nodes_to_find", "select_host"]
