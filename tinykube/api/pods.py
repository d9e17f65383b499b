"""Pod helpers shared by the scheduler, the kubelet and the controllers.

The rules here are upstream's (k8s.io/component-helpers and pkg/api/v1/pod): readiness is
the Ready condition, effective requests combine regular, init and sidecar containers the
way the scheduler does, and tolerations match taints with Equal/Exists semantics.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping

from tinykube.api import meta
from tinykube.api.quantity import ResourceList, add, max_of, to_resource_list

Obj = dict[str, Any]

# The scheduler's defaults for containers without requests (used for scoring only).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


def spec(pod: Obj) -> dict[str, Any]:
    return pod.get("spec") or {}


def status(pod: Obj) -> dict[str, Any]:
    return pod.get("status") or {}


def phase(pod: Obj) -> str:
    """``status.phase``; a pod the API server has not yet given a phase is Pending."""
    return status(pod).get("phase") or "Pending"


def is_terminal(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """Counted by controllers: not terminal and not being deleted (``IsPodActive``)."""
    return not is_terminal(pod) and not meta.is_deleting(pod)


def node_name(pod: Obj) -> str:
    return spec(pod).get("nodeName") or ""


def is_scheduled(pod: Obj) -> bool:
    return bool(node_name(pod))


def pod_ip(pod: Obj) -> str:
    return status(pod).get("podIP") or ""


# --- conditions (pods, nodes, deployments, ... all share the shape) ---------------------


def readiness_gates(pod: Obj) -> list[str]:
    """The condition types of the pod's readiness gates (conditions other writers set)."""
    return [g.get("conditionType") for g in spec(pod).get("readinessGates") or []]


def condition(obj: Obj, cond_type: str) -> dict[str, Any] | None:
    """The ``status.conditions`` entry of that type, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def condition_status(obj: Obj, cond_type: str) -> str:
    """``True``/``False``/``Unknown``; ``Unknown`` when the condition is absent."""
    cond = condition(obj, cond_type)
    return (cond or {}).get("status") or "Unknown"


def set_condition(obj_status: dict[str, Any], cond: Mapping[str, Any]) -> bool:
    """Insert or update a condition in a status dict; returns whether anything changed.

    ``lastTransitionTime`` moves only when ``status`` changes (as upstream's
    ``UpdatePodCondition``); it is filled in with now() when the caller gave none.
    """
    conditions = obj_status.setdefault("conditions", [])
    new = dict(cond)
    for i, old in enumerate(conditions):
        if old.get("type") != new.get("type"):
            continue
        if old.get("status") == new.get("status"):
            new["lastTransitionTime"] = old.get("lastTransitionTime") or new.get(
                "lastTransitionTime") or meta.now()
        elif not new.get("lastTransitionTime"):
            new["lastTransitionTime"] = meta.now()
        merged = {**old, **new}
        if merged == old:
            return False
        conditions[i] = merged
        return True
    new.setdefault("lastTransitionTime", meta.now())
    conditions.append(new)
    return True


def is_ready(pod: Obj) -> bool:
    return condition_status(pod, "Ready") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now_ts: float | None = None) -> bool:
    """Ready for at least ``min_ready_seconds`` (``podutil.IsPodAvailable``)."""
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    cond = condition(pod, "Ready") or {}
    since = cond.get("lastTransitionTime")
    if not since:
        return False
    now_value = time.time() if now_ts is None else now_ts
    return meta.parse_time(since).timestamp() + min_ready_seconds <= now_value


# --- containers ------------------------------------------------------------------------


def containers(pod: Obj) -> list[dict[str, Any]]:
    return spec(pod).get("containers") or []


def init_containers(pod: Obj) -> list[dict[str, Any]]:
    return spec(pod).get("initContainers") or []


def ephemeral_containers(pod: Obj) -> list[dict[str, Any]]:
    return spec(pod).get("ephemeralContainers") or []


def all_containers(pod: Obj) -> list[dict[str, Any]]:
    """Init containers first, then regular ones (ephemeral containers excluded)."""
    return [*init_containers(pod), *containers(pod)]


def is_sidecar(container: Mapping[str, Any]) -> bool:
    """A restartable init container (``restartPolicy: Always``)."""
    return container.get("restartPolicy") == "Always"


def container(pod: Obj, name: str) -> dict[str, Any] | None:
    for c in [*all_containers(pod), *ephemeral_containers(pod)]:
        if c.get("name") == name:
            return c
    return None


def container_statuses(pod: Obj) -> list[dict[str, Any]]:
    return status(pod).get("containerStatuses") or []


def init_container_statuses(pod: Obj) -> list[dict[str, Any]]:
    return status(pod).get("initContainerStatuses") or []


def container_status(pod: Obj, name: str) -> dict[str, Any] | None:
    for cs in [*init_container_statuses(pod), *container_statuses(pod),
               *(status(pod).get("ephemeralContainerStatuses") or [])]:
        if cs.get("name") == name:
            return cs
    return None


def restart_count(pod: Obj) -> int:
    return sum(int(cs.get("restartCount") or 0) for cs in container_statuses(pod))


def default_container_name(pod: Obj) -> str:
    """The ``kubectl.kubernetes.io/default-container`` annotation, else the first container."""
    wanted = meta.annotations(pod).get("kubectl.kubernetes.io/default-container")
    if wanted and container(pod, wanted) is not None:
        return wanted
    cs = containers(pod)
    return cs[0].get("name", "") if cs else ""


# --- resources -------------------------------------------------------------------------


def container_resource_requests(c: Mapping[str, Any]) -> ResourceList:
    """A container's requests; a limit without a request counts as the request
    (API defaulting copies it, this also holds before defaulting)."""
    resources = c.get("resources") or {}
    out = to_resource_list(resources.get("limits"))
    out.update(to_resource_list(resources.get("requests")))
    return out


def _combine(pod: Obj, per_container: Callable[[Mapping[str, Any]], ResourceList]) -> ResourceList:
    """max(sum of containers + sidecars, the largest init step) + overhead, where an init
    step is that init container plus the sidecars started before it."""
    total: ResourceList = {}
    for c in containers(pod):
        total = add(total, per_container(c))
    sidecars: ResourceList = {}
    init_peak: ResourceList = {}
    for c in init_containers(pod):
        c_res = per_container(c)
        if is_sidecar(c):
            total = add(total, c_res)
            sidecars = add(sidecars, c_res)
            step = sidecars
        else:
            step = add(c_res, sidecars)
        init_peak = max_of(init_peak, step)
    return add(max_of(total, init_peak), spec(pod).get("overhead"))


def pod_requests(pod: Obj, *, include_pods: bool = True) -> ResourceList:
    """The pod's effective requests, as the scheduler computes them (see ``_combine``).

    Covers every resource name (cpu, memory, ephemeral-storage, extended resources such as
    nvidia.com/gpu); ``pods`` counts 1.
    """
    reqs = _combine(pod, container_resource_requests)
    if include_pods:
        reqs["pods"] = Fraction(1)
    return reqs


# The name the package contract (docs/internals.md) gives the same function.
container_requests = pod_requests


def pod_limits(pod: Obj) -> ResourceList:
    """Effective limits with the same combination rule (no ``pods`` entry)."""
    return _combine(pod, lambda c: to_resource_list((c.get("resources") or {}).get("limits")))


def _non_zero(c: Mapping[str, Any]) -> ResourceList:
    reqs = container_resource_requests(c)
    reqs.setdefault("cpu", Fraction(DEFAULT_MILLI_CPU_REQUEST, 1000))
    reqs.setdefault("memory", Fraction(DEFAULT_MEMORY_REQUEST))
    return reqs


def non_zero_requests(pod: Obj) -> tuple[int, int]:
    """(milli-CPU, memory bytes) with the scheduler's defaults for unset requests, for scoring."""
    reqs = _combine(pod, _non_zero)
    return math.ceil(reqs["cpu"] * 1000), math.ceil(reqs["memory"])


def qos_class(pod: Obj) -> str:
    """Guaranteed / Burstable / BestEffort, from cpu and memory requests and limits."""
    requests: ResourceList = {}
    limits: ResourceList = {}
    guaranteed = True
    for c in all_containers(pod):
        res = c.get("resources") or {}
        c_req = {k: v for k, v in to_resource_list(res.get("requests")).items()
                 if k in ("cpu", "memory") and v != 0}
        c_lim = {k: v for k, v in to_resource_list(res.get("limits")).items()
                 if k in ("cpu", "memory") and v != 0}
        requests = add(requests, c_req)
        limits = add(limits, c_lim)
        if set(c_lim) != {"cpu", "memory"}:
            guaranteed = False
        for k, v in c_req.items():
            if c_lim.get(k) != v:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# --- taints and tolerations ------------------------------------------------------------


def tolerates_taint(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """One toleration against one taint (``Toleration.ToleratesTaint``).

    An empty effect matches every effect; an empty key with ``Exists`` matches every key;
    ``Equal`` (the default operator) also compares values.
    """
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: Iterable[Mapping[str, Any]] | None, taint: Mapping[str, Any]) -> bool:
    return any(tolerates_taint(t, taint) for t in tolerations or ())


def untolerated_taints(tolerations: Iterable[Mapping[str, Any]] | None,
                       taints: Iterable[Mapping[str, Any]] | None,
                       effects: Iterable[str] = ("NoSchedule", "NoExecute")) -> list[dict]:
    """Taints with one of ``effects`` that no toleration tolerates."""
    tols = list(tolerations or ())
    wanted = set(effects)
    return [dict(t) for t in taints or () if t.get("effect") in wanted and not tolerates(tols, t)]
