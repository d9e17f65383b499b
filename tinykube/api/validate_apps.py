"""Workload validation: Deployments, ReplicaSets, DaemonSets, StatefulSets, Jobs, CronJobs
(pkg/apis/apps/validation and pkg/apis/batch/validation)."""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import Cause
from tinykube.api.fieldpath import Path
from tinykube.api.selectors import LabelSelector
from tinykube.api.validate_common import (Causes, Obj, as_dict, as_list, go_map, go_selector,
                                          int_or_percent, invalid_raw, is_zero_int_or_percent,
                                          labels, non_negative, percent_at_most_100,
                                          supported, unchanged)
from tinykube.api.validate_pod import validate_template

SPEC = Path("spec")


def _selector(selector: Any, path: Path, kind_name: str, *, allow_empty: bool = False) -> Causes:
    if selector is None:
        return [Cause.required(str(path))]
    if not isinstance(selector, dict):
        return [Cause.type_invalid(str(path), selector, "must be of type object")]
    errs = labels(selector.get("matchLabels"), path.child("matchLabels"))
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        expr = as_dict(expr)
        p = path.child("matchExpressions").index(i)
        op = expr.get("operator")
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            errs.append(Cause.invalid(str(p.child("operator")), op,
                                      "not a valid selector operator"))
        elif op in ("In", "NotIn") and not as_list(expr.get("values")):
            errs.append(Cause.required(str(p.child("values")),
                                       "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and as_list(expr.get("values")):
            errs.append(Cause.forbidden(str(p.child("values")),
                                        "may not be specified when `operator` is 'Exists' or "
                                        "'DoesNotExist'"))
    if not errs and not allow_empty and not selector.get("matchLabels") and \
            not selector.get("matchExpressions"):
        errs.append(invalid_raw(path, go_selector(selector),
                                f"empty selector is invalid for {kind_name}"))
    return errs


def _selector_matches_template(selector: Any, template: Any, path: Path) -> Causes:
    template_labels = as_dict(as_dict(as_dict(template).get("metadata")).get("labels"))
    try:
        sel = LabelSelector.from_dict(selector)
    except ValueError:
        return []
    if sel.empty or sel.matches(template_labels):
        return []
    return [invalid_raw(path, go_map(template_labels),
                        "`selector` does not match template `labels`")]


def _replicated(spec: Any, kind_name: str, *, replicas: bool = True,
                allow_empty_selector: bool = False) -> Causes:
    spec = as_dict(spec)
    errs: Causes = []
    if replicas:
        errs += non_negative(spec.get("replicas"), SPEC.child("replicas"))
    errs += non_negative(spec.get("minReadySeconds"), SPEC.child("minReadySeconds"))
    errs += non_negative(spec.get("revisionHistoryLimit"), SPEC.child("revisionHistoryLimit"))
    sel_errs = _selector(spec.get("selector"), SPEC.child("selector"), kind_name,
                         allow_empty=allow_empty_selector)
    errs += sel_errs
    if not sel_errs:
        errs += _selector_matches_template(spec.get("selector"), spec.get("template"),
                                           SPEC.child("template", "metadata", "labels"))
    return errs


def _always_template(spec: Any) -> Causes:
    return validate_template(as_dict(spec).get("template"), SPEC.child("template"),
                             restart_policies=("Always",))


def _rolling_update(rolling: Any, path: Path, *, max_unavailable_100: bool = True) -> Causes:
    rolling = as_dict(rolling)
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = int_or_percent(unavailable, path.child("maxUnavailable"))
    errs += int_or_percent(surge, path.child("maxSurge"))
    if max_unavailable_100:
        errs += percent_at_most_100(unavailable, path.child("maxUnavailable"))
    if "maxUnavailable" in rolling and "maxSurge" in rolling and \
            is_zero_int_or_percent(unavailable) and is_zero_int_or_percent(surge):
        errs.append(Cause.invalid(str(path.child("maxUnavailable")), unavailable,
                                  "may not be 0 when `maxSurge` is 0"))
    return errs


def _selector_immutable(obj: Obj, old: Obj | None) -> Causes:
    if old is None:
        return []
    new_sel = as_dict(obj.get("spec")).get("selector")
    old_sel = as_dict(old.get("spec")).get("selector")
    return unchanged(new_sel, old_sel, SPEC.child("selector"), go_selector(new_sel))


def validate_deployment(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = _replicated(spec, "deployment") + _always_template(spec)
    strategy = as_dict(spec.get("strategy"))
    stype = strategy.get("type")
    errs += supported(stype, SPEC.child("strategy", "type"), ("Recreate", "RollingUpdate"))
    if stype == "Recreate" and strategy.get("rollingUpdate") is not None:
        errs.append(Cause.forbidden(str(SPEC.child("strategy", "rollingUpdate")),
                                    "may not be specified when strategy `type` is 'Recreate'"))
    elif stype == "RollingUpdate":
        errs += _rolling_update(strategy.get("rollingUpdate"),
                                SPEC.child("strategy", "rollingUpdate"))
    deadline = spec.get("progressDeadlineSeconds")
    errs += non_negative(deadline, SPEC.child("progressDeadlineSeconds"))
    if isinstance(deadline, int) and deadline <= int(spec.get("minReadySeconds") or 0):
        errs.append(Cause.invalid(str(SPEC.child("progressDeadlineSeconds")), deadline,
                                  "must be greater than minReadySeconds"))
    return errs + _selector_immutable(obj, old)


def validate_replicaset(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    return (_replicated(spec, "replicaset") + _always_template(spec)
            + _selector_immutable(obj, old))


def validate_replication_controller(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = non_negative(spec.get("replicas"), SPEC.child("replicas"))
    selector = spec.get("selector")
    if not selector:
        errs.append(Cause.required(str(SPEC.child("selector"))))
    else:
        errs += labels(selector, SPEC.child("selector"))
        template_labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata"))
                                  .get("labels"))
        if any(template_labels.get(k) != v for k, v in as_dict(selector).items()):
            errs.append(invalid_raw(SPEC.child("template", "metadata", "labels"),
                                    go_map(template_labels),
                                    "`selector` does not match template `labels`"))
    if spec.get("template") is not None:
        errs += _always_template(spec)
    return errs


def validate_daemonset(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = _replicated(spec, "daemonset", replicas=False) + _always_template(spec)
    strategy = as_dict(spec.get("updateStrategy"))
    stype = strategy.get("type")
    errs += supported(stype, SPEC.child("updateStrategy", "type"), ("OnDelete", "RollingUpdate"))
    if stype == "RollingUpdate":
        path = SPEC.child("updateStrategy", "rollingUpdate")
        errs += _rolling_update(strategy.get("rollingUpdate"), path)
    return errs + _selector_immutable(obj, old)


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def validate_statefulset(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = _replicated(spec, "statefulset") + _always_template(spec)
    errs += supported(spec.get("podManagementPolicy"), SPEC.child("podManagementPolicy"),
                      ("OrderedReady", "Parallel"))
    strategy = as_dict(spec.get("updateStrategy"))
    errs += supported(strategy.get("type"), SPEC.child("updateStrategy", "type"),
                      ("OnDelete", "RollingUpdate"))
    partition = as_dict(strategy.get("rollingUpdate")).get("partition")
    errs += non_negative(partition, SPEC.child("updateStrategy", "rollingUpdate", "partition"))
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        new_rest = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        old_rest = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if new_rest != old_rest:
            errs.append(Cause.forbidden("spec", "updates to statefulset spec for fields other "
                                                "than 'replicas', 'ordinals', 'template', "
                                                "'updateStrategy', "
                                                "'persistentVolumeClaimRetentionPolicy' and "
                                                "'minReadySeconds' are forbidden"))
    return errs


_JOB_RESTART = 'valid values: "OnFailure", "Never"'


def _job_spec(spec: Any, path: Path, *, selector_required: bool) -> Causes:
    spec = as_dict(spec)
    errs: Causes = []
    for field in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                  "ttlSecondsAfterFinished"):
        errs += non_negative(spec.get(field), path.child(field))
    mode = spec.get("completionMode")
    if mode is not None:
        errs += supported(mode, path.child("completionMode"), ("NonIndexed", "Indexed"))
        if mode == "Indexed" and spec.get("completions") is None:
            errs.append(Cause.required(str(path.child("completions")),
                                       "when completion mode is Indexed"))
    selector = spec.get("selector")
    if selector is None:
        if selector_required:
            errs.append(Cause.required(str(path.child("selector"))))
    else:
        sel_errs = _selector(selector, path.child("selector"), "job", allow_empty=True)
        errs += sel_errs
        if not sel_errs:
            errs += _selector_matches_template(selector, spec.get("template"),
                                               path.child("template", "metadata", "labels"))
    errs += validate_template(spec.get("template"), path.child("template"),
                              restart_policies=("OnFailure", "Never"),
                              restart_message=_JOB_RESTART)
    return errs


def validate_job(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = _job_spec(spec, SPEC, selector_required=True)
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        errs += _selector_immutable(obj, old)
        if not spec.get("suspend") and not old_spec.get("suspend"):
            errs += unchanged(spec.get("template"), old_spec.get("template"),
                              SPEC.child("template"), "core.PodTemplateSpec{...}")
        if spec.get("completionMode") != "Indexed":
            errs += unchanged(spec.get("completions"), old_spec.get("completions"),
                              SPEC.child("completions"))
        errs += unchanged(spec.get("completionMode"), old_spec.get("completionMode"),
                          SPEC.child("completionMode"))
    return errs


_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES = ({}, {}, {}, {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))},
    {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))})


def cron_error(schedule: str) -> str | None:
    """Why a standard 5-field cron schedule does not parse (None when it does)."""
    text = schedule.strip()
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        _, _, text = text.partition(" ")
    if text in _CRON_MACROS or text.startswith("@every "):
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {schedule}"
    for field, (low, high), aliases in zip(fields, _CRON_RANGES, _CRON_NAMES):
        for part in field.split(","):
            base, _, step = part.partition("/")
            if step and not step.isdigit():
                return f"failed to parse int from {step}: strconv.Atoi: parsing {step!r}: " \
                       "invalid syntax"
            if base in ("*", "?"):
                continue
            bounds = base.split("-")
            if len(bounds) > 2:
                return f"too many hyphens: {part}"
            for b in bounds:
                value = aliases.get(b.lower()) if not b.isdigit() else int(b)
                if value is None:
                    return f"failed to parse int from {b}: strconv.Atoi: parsing {b!r}: " \
                           "invalid syntax"
                if not low <= value <= high:
                    return f"end of range ({value}) above maximum ({high}): {part}" \
                        if value > high else f"beginning of range ({value}) below minimum " \
                                             f"({low}): {part}"
    return None


def validate_cronjob(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs: Causes = []
    name = as_dict(obj.get("metadata")).get("name") or ""
    if len(name) > 52:
        errs.append(Cause.invalid("metadata.name", name, "must be no more than 52 characters"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(Cause.required(str(SPEC.child("schedule"))))
    elif isinstance(schedule, str):
        problem = cron_error(schedule)
        if problem:
            errs.append(Cause.invalid(str(SPEC.child("schedule")), schedule, problem))
    errs += supported(spec.get("concurrencyPolicy"), SPEC.child("concurrencyPolicy"),
                      ("Allow", "Forbid", "Replace"))
    errs += non_negative(spec.get("startingDeadlineSeconds"), SPEC.child("startingDeadlineSeconds"))
    errs += non_negative(spec.get("successfulJobsHistoryLimit"),
                         SPEC.child("successfulJobsHistoryLimit"))
    errs += non_negative(spec.get("failedJobsHistoryLimit"), SPEC.child("failedJobsHistoryLimit"))
    job_template = as_dict(spec.get("jobTemplate"))
    errs += _job_spec(job_template.get("spec"), SPEC.child("jobTemplate", "spec"),
                      selector_required=False)
    return errs
