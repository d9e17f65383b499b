"""Pure Deployment arithmetic (upstream pkg/controller/deployment/util).

Template hashes, revisions, surge/unavailability fenceposts, how far a new ReplicaSet may
grow, status and conditions. No I/O: the controller in ``deployment.py`` decides what to
write from these values, and the unit tests pin each rule down on its own.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

import orjson

from tinykube.api import meta

from tinykube.controllers import util

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Deployment annotations not copied onto its ReplicaSets (upstream annotationsToSkip).
ANNOTATIONS_TO_SKIP = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
                       MAX_REPLICAS, ROLLBACK_TO}

# Condition reasons, as upstream spells them (kubectl rollout status matches on them).
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
TIMED_OUT = "ProgressDeadlineExceeded"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_CREATED = "NewReplicaSetCreated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# --- spec accessors (with the API's defaults) -------------------------------------------

def replicas(obj: Obj) -> int:
    value = util.spec(obj).get("replicas")
    return 1 if value is None else int(value)


def strategy_type(d: Obj) -> str:
    return (util.spec(d).get("strategy") or {}).get("type") or "RollingUpdate"


def is_rolling(d: Obj) -> bool:
    return strategy_type(d) == "RollingUpdate"


def progress_deadline(d: Obj) -> int | None:
    value = util.spec(d).get("progressDeadlineSeconds", 600)
    return None if value is None else int(value)


def has_progress_deadline(d: Obj) -> bool:
    deadline = progress_deadline(d)
    return deadline is not None and deadline != 2 ** 31 - 1


def revision_history_limit(d: Obj) -> int | None:
    value = util.spec(d).get("revisionHistoryLimit", 10)
    return None if value is None else int(value)


def template(obj: Obj) -> Obj:
    return util.spec(obj).get("template") or {}


# --- hashing and template equality ------------------------------------------------------

def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Upstream rand.SafeEncodeString: no vowels, no ambiguous characters."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in text)


def _strip_nulls(value: Any) -> Any:
    """Drop null fields: ``creationTimestamp: null`` (as kubectl sends it) means unset."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def compute_hash(tmpl: Obj, collision_count: int | None = None) -> str:
    """The pod-template-hash: a stable FNV-32a hash of the template (and collisionCount)."""
    data = orjson.dumps(_strip_nulls(tmpl), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(_fnv32a(data)))


def _without_hash(tmpl: Obj) -> Obj:
    out = _strip_nulls(copy.deepcopy(tmpl))
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            out["metadata"].pop("labels")
    if out.get("metadata") == {}:
        out.pop("metadata")
    return out


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Templates equal apart from the pod-template-hash label (upstream EqualIgnoreHash)."""
    return _without_hash(a) == _without_hash(b)


# --- revisions --------------------------------------------------------------------------

def revision(obj: Obj) -> int:
    try:
        return int(meta.annotations(obj).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(rss: list[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def find_new_replicaset(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (ties broken by name)."""
    for rs in sorted(rss, key=lambda r: (util.creation_time(r), meta.name(r))):
        if equal_ignore_hash(template(rs), template(d)):
            return rs
    return None


def new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> tuple[Obj, bool]:
    """The ReplicaSet's annotations after copying the Deployment's and its revision."""
    annotations = dict(meta.annotations(rs))
    changed = False
    for k, v in meta.annotations(d).items():
        if k in ANNOTATIONS_TO_SKIP or annotations.get(k) == v:
            continue
        annotations[k] = v
        changed = True
    old = annotations.get(REVISION, "")
    try:
        old_int = int(old) if old else 0
    except ValueError:
        old_int = 0
    if old_int < new_revision:
        annotations[REVISION] = str(new_revision)
        if old:
            history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
            annotations[REVISION_HISTORY] = ",".join(history + [old])
        changed = True
    if not exists:
        desired, maximum = replicas(d), replicas(d) + max_surge(d)
        annotations[DESIRED_REPLICAS] = str(desired)
        annotations[MAX_REPLICAS] = str(maximum)
        changed = True
    return annotations, changed


def replicas_annotations_need_update(rs: Obj, desired: int, maximum: int) -> bool:
    ann = meta.annotations(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)


# --- surge and unavailability -----------------------------------------------------------

def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (``3`` or ``"25%"``) resolved against ``total``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable); both zero would deadlock, so unavailable becomes 1."""
    rolling = (util.spec(d).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


def spec_replicas_sum(rss: list[Obj]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def status_sum(rss: list[Obj], field: str) -> int:
    return sum(int(util.status(rs).get(field) or 0) for rs in rss if rs is not None)


def new_rs_new_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """How many replicas the new ReplicaSet may have now (upstream NewRSNewReplicas)."""
    if not is_rolling(d):
        return replicas(d)
    current = spec_replicas_sum(all_rss)
    max_total = replicas(d) + max_surge(d)
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = meta.annotations(rs).get(DESIRED_REPLICAS)
    return (desired == str(replicas(d)) and replicas(rs) == replicas(d)
            and int(util.status(rs).get("availableReplicas") or 0) == replicas(d))


def active_replicasets(rss: list[Obj]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def by_creation(rss: list[Obj], newest_first: bool = False) -> list[Obj]:
    return sorted(rss, key=lambda r: (util.creation_time(r), meta.name(r)),
                  reverse=newest_first)


# --- conditions and status --------------------------------------------------------------

def get_condition(status: Obj, type_: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def new_condition(type_: str, status: str, reason: str, message: str) -> Obj:
    now = meta.now()
    return {"type": type_, "status": status, "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream SetDeploymentCondition: same status and reason is no change."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and \
            current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in status.get("conditions") or []
                            if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, type_: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def calculate_status(all_rss: list[Obj], new_rs: Obj | None, d: Obj) -> Obj:
    """The Deployment's status from its ReplicaSets (upstream calculateStatus)."""
    available = status_sum(all_rss, "availableReplicas")
    unavailable = max(spec_replicas_sum(all_rss) - available, 0)
    old = util.status(d)
    status: Obj = {
        "observedGeneration": meta.generation(d),
        "replicas": status_sum(all_rss, "replicas"),
        "updatedReplicas": status_sum([new_rs] if new_rs else [], "replicas"),
        "readyReplicas": status_sum(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= replicas(d) - max_unavailable(d):
        set_condition(status, new_condition("Available", "True", MIN_AVAILABLE,
                                            "Deployment has minimum availability."))
    else:
        set_condition(status, new_condition("Available", "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability."))
    return status


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas(d)
    return (int(status.get("updatedReplicas") or 0) == want
            and int(status.get("replicas") or 0) == want
            and int(status.get("availableReplicas") or 0) == want
            and int(status.get("observedGeneration") or 0) >= meta.generation(d))


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = util.status(d)

    def n(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)

    old_old = n(old, "replicas") - n(old, "updatedReplicas")
    new_old = n(new, "replicas") - n(new, "updatedReplicas")
    return (n(new, "updatedReplicas") > n(old, "updatedReplicas") or new_old < old_old
            or n(new, "readyReplicas") > n(old, "readyReplicas")
            or n(new, "availableReplicas") > n(old, "availableReplicas"))


def deployment_timed_out(d: Obj, status: Obj, now: dt.datetime | None = None) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = util.parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return False
    deadline = since + dt.timedelta(seconds=progress_deadline(d) or 0)
    return deadline < (now or util.utcnow())


_STATUS_INTS = ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                "availableReplicas", "unavailableReplicas", "collisionCount")


def status_equal(a: Obj, b: Obj) -> bool:
    """Equal as the API stores them: an omitted count is zero, omitted conditions empty."""
    return (all(int(a.get(k) or 0) == int(b.get(k) or 0) for k in _STATUS_INTS)
            and (a.get("conditions") or []) == (b.get("conditions") or []))
