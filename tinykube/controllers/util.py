"""Small helpers shared by the controllers: times, pod states and cache lookups."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tinykube.api import meta

Obj = dict[str, Any]


def parse_time(value: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (None or malformed gives None)."""
    if not value:
        return None
    try:
        return meta.parse_time(value)
    except ValueError:
        return None


def format_time(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def pod_phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def is_pod_active(pod: Obj) -> bool:
    """Counts toward a workload's replicas: not terminal and not being deleted."""
    return pod_phase(pod) not in ("Succeeded", "Failed") and meta.deletion_timestamp(pod) is None


def condition(obj: Obj, type_: str) -> Obj | None:
    """The status condition of the given type, if present."""
    for cond in status(obj).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_pod_ready(pod: Obj) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond) and cond.get("status") == "True"


def ready_since(pod: Obj) -> dt.datetime | None:
    """When the pod last became Ready, or None when it is not Ready."""
    cond = condition(pod, "Ready")
    if not cond or cond.get("status") != "True":
        return None
    return (parse_time(cond.get("lastTransitionTime"))
            or parse_time(meta.creation_timestamp(pod)))


def is_pod_available(pod: Obj, min_ready_seconds: int, now: dt.datetime | None = None) -> bool:
    """Ready for at least ``minReadySeconds`` (upstream podutil.IsPodAvailable)."""
    since = ready_since(pod)
    if since is None:
        return False
    if min_ready_seconds <= 0:
        return True
    return since + dt.timedelta(seconds=min_ready_seconds) <= (now or utcnow())


def _controller_ref(obj: Obj, kind: str) -> Obj | None:
    ref = meta.controller_of(obj)
    return ref if ref and ref.get("kind") == kind else None


def controller_key(obj: Obj, kind: str) -> str | None:
    """The ``ns/name`` key of the ``kind`` that controls ``obj``; None when no controller
    or one of another kind does."""
    ref = _controller_ref(obj, kind)
    return None if ref is None else f"{meta.namespace(obj)}/{ref.get('name')}"


def resolve_controller(cache: Any, obj: Obj, kind: str) -> Obj | None:
    """The cached ``kind`` controlling ``obj`` (upstream's resolveControllerRef): None
    when it is not cached or the cached one is a namesake with another uid."""
    ref = _controller_ref(obj, kind)
    if ref is None:
        return None
    owner = cache.get(f"{meta.namespace(obj)}/{ref.get('name')}")
    return owner if owner is not None and meta.uid(owner) == ref.get("uid") else None


def creation_time(obj: Obj) -> str:
    return (obj.get("metadata") or {}).get("creationTimestamp") or ""


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def status(obj: Obj) -> Obj:
    return obj.get("status") or {}
