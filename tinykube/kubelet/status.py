"""Pod status from what the kubelet knows: pure functions, no I/O.

The rules are upstream's (``kubelet_pods.go``: ``getPhase``, ``generateAPIPodStatus``,
``convertToAPIContainerStatuses``; ``status/generate.go`` for the conditions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tinykube.api import pods as podutil
from tinykube.kubelet.runtime.interface import ContainerState, ContainerStatus

Obj = dict[str, Any]


@dataclass
class ContainerRecord:
    """The kubelet's memory of one container of a pod, across restarts."""

    name: str
    current: ContainerStatus | None = None
    last_terminated: ContainerStatus | None = None
    restart_count: int = 0
    waiting_reason: str = ""
    waiting_message: str = ""
    ready: bool = False
    started: bool = False
    spec_hash: str = ""


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def terminated_state(cs: ContainerStatus, prefix: str) -> Obj:
    out: Obj = {"exitCode": cs.exit_code, "reason": cs.reason or ("Completed" if cs.exit_code == 0 else "Error"),
                "startedAt": rfc3339(cs.started_at or cs.created_at), "finishedAt": rfc3339(cs.finished_at),
                "containerID": f"{prefix}://{cs.id}"}
    if cs.message:
        out["message"] = cs.message
    return out


def container_state(rec: ContainerRecord, prefix: str, default_waiting: str) -> Obj:
    """The API ``state`` of a container: waiting (with a reason), running or terminated."""
    cur = rec.current
    if rec.waiting_reason:
        waiting: Obj = {"reason": rec.waiting_reason}
        if rec.waiting_message:
            waiting["message"] = rec.waiting_message
        return {"waiting": waiting}
    if cur is None or cur.state == ContainerState.CONTAINER_CREATED:
        return {"waiting": {"reason": default_waiting}}
    if cur.state == ContainerState.CONTAINER_RUNNING:
        return {"running": {"startedAt": rfc3339(cur.started_at)}}
    return {"terminated": terminated_state(cur, prefix)}


def api_container_status(spec_c: Obj, rec: ContainerRecord, prefix: str, default_waiting: str) -> Obj:
    state = container_state(rec, prefix, default_waiting)
    cur = rec.current
    out: Obj = {
        "name": spec_c["name"],
        "image": spec_c.get("image", ""),
        "imageID": cur.image_ref if cur else "",
        "ready": bool(rec.ready and "running" in state),
        "restartCount": rec.restart_count,
        "started": bool(rec.started and "running" in state),
        "state": state,
        "lastState": {},
    }
    if cur is not None:
        out["containerID"] = f"{prefix}://{cur.id}"
    last = rec.last_terminated
    if "waiting" in state and cur is not None and cur.state == ContainerState.CONTAINER_EXITED:
        last = cur  # waiting to restart it (back-off): its exit is the last state
    if last is not None and not ("terminated" in state and cur is not None and last.id == cur.id):
        out["lastState"] = {"terminated": terminated_state(last, prefix)}
    return out


def _succeeded(cs: Obj) -> bool:
    term = (cs.get("state") or {}).get("terminated")
    return bool(term) and term.get("exitCode") == 0


def init_pending(pod: Obj, init_statuses: list[Obj]) -> list[str]:
    """Names of (non-sidecar) init containers that have not yet completed successfully."""
    by_name = {cs["name"]: cs for cs in init_statuses}
    out = []
    for c in podutil.init_containers(pod):
        cs = by_name.get(c["name"])
        if podutil.is_sidecar(c):
            if not cs or not (cs.get("started") or "running" in (cs.get("state") or {})):
                out.append(c["name"])
        elif not cs or not _succeeded(cs):
            out.append(c["name"])
    return out


def init_failed(pod: Obj, init_statuses: list[Obj]) -> bool:
    """An init container failed and the pod will not retry it (restartPolicy Never)."""
    if (podutil.spec(pod).get("restartPolicy") or "Always") != "Never":
        return False
    for cs in init_statuses:
        term = (cs.get("state") or {}).get("terminated")
        if term and term.get("exitCode") != 0:
            return True
    return False


def pod_phase(pod: Obj, init_statuses: list[Obj], statuses: list[Obj]) -> str:
    """``getPhase``: Pending while initializing or waiting, then Running, Succeeded or Failed."""
    policy = podutil.spec(pod).get("restartPolicy") or "Always"
    if init_failed(pod, init_statuses):
        return "Failed"
    pending_init = bool(init_pending(pod, init_statuses))
    running = waiting = stopped = succeeded = unknown = 0
    by_name = {cs["name"]: cs for cs in statuses}
    for c in podutil.containers(pod):
        cs = by_name.get(c["name"])
        if cs is None:
            unknown += 1
            continue
        state = cs.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += int(state["terminated"].get("exitCode") == 0)
        elif "waiting" in state:
            if (cs.get("lastState") or {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if pending_init:
        return "Pending"
    if waiting > 0:
        return "Pending"
    if running > 0 and unknown == 0:
        return "Running"
    if running == 0 and stopped > 0 and unknown == 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def pod_conditions(pod: Obj, phase: str, init_statuses: list[Obj], statuses: list[Obj],
                   sandbox_ready: bool) -> list[Obj]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled."""
    conds: list[Obj] = [{"type": "PodReadyToStartContainers", "status": "True" if sandbox_ready else "False"}]
    pending = init_pending(pod, init_statuses)
    if pending and phase not in ("Succeeded", "Failed"):
        conds.append({"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized",
                      "message": f"containers with incomplete status: [{' '.join(pending)}]"})
    else:
        conds.append({"type": "Initialized", "status": "True"})
    if phase in ("Succeeded", "Failed"):
        ready = {"status": "False", "reason": "PodCompleted"}
    else:
        by_name = {cs["name"]: cs for cs in statuses}
        unready = [c["name"] for c in podutil.containers(pod) if not (by_name.get(c["name"]) or {}).get("ready")]
        if unready:
            ready = {"status": "False", "reason": "ContainersNotReady",
                     "message": f"containers with unready status: [{' '.join(unready)}]"}
        else:
            ready = {"status": "True"}
    conds.append({"type": "ContainersReady", **ready})
    pod_ready = dict(ready)
    missing = [g for g in podutil.readiness_gates(pod) if podutil.condition_status(pod, g) != "True"]
    if ready["status"] == "True" and missing:
        pod_ready = {"status": "False", "reason": "ReadinessGatesNotReady",
                     "message": f"corresponding condition of pod readiness gate \"{missing[0]}\" does not exist."}
    conds.append({"type": "Ready", **pod_ready})
    conds.append({"type": "PodScheduled", "status": "True"})
    return conds


def merge_conditions(old_status: Obj, new_conditions: list[Obj], now: str) -> list[Obj]:
    """The kubelet's conditions replace its own earlier ones, keeping their
    ``lastTransitionTime`` when the status did not change; conditions other writers own
    (readiness gates, DisruptionTarget) are kept as they are."""
    old = {c.get("type"): c for c in old_status.get("conditions") or []}
    ours = {c["type"] for c in new_conditions}
    out: list[Obj] = []
    for cond in new_conditions:
        prev = old.get(cond["type"])
        same = prev is not None and prev.get("status") == cond["status"]
        out.append({**cond, "lastProbeTime": None,
                    "lastTransitionTime": (prev.get("lastTransitionTime") if same else None) or now})
    out.extend(c for t, c in old.items() if t not in ours)
    return out
