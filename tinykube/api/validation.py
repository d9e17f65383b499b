"""Object validation with upstream's field errors (pkg/apis/*/validation).

``validate(info, obj, old=None)`` returns the list of ``Cause`` (field, reason, message)
upstream would report for a create (``old`` None) or an update; ``build_invalid_error``
turns them into the 422 ``<Kind> "<name>" is invalid: ...`` ApiError.
``unknown_fields`` walks the object against upstream's schema for
``fieldValidation=Strict|Warn``; ``strict_decoding_error`` is the 400 Strict answers with.

The per-kind rules live in validate_pod, validate_apps, validate_core and validate_other;
this module adds ObjectMeta checks and picks the validator for a kind.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from tinykube.api import decoding, errors, names, schema
from tinykube.api.errors import ApiError, Cause
from tinykube.api.fieldpath import Path
from tinykube.api.kinds import ResourceInfo
from tinykube.api import validate_apps as apps
from tinykube.api import validate_core as core
from tinykube.api import validate_other as other
from tinykube.api import validate_pod as pod
from tinykube.api.validate_common import (Causes, Obj, Validator, as_dict, as_list, labels,
                                          msgs_to_causes, unchanged)

TOTAL_ANNOTATION_SIZE = 256 * 1024

NameCheck = Callable[[str], list[str]]


def is_path_segment_name(value: str) -> list[str]:
    """``path.IsValidPathSegmentName``: RBAC objects and PersistentVolumes."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    errs = []
    for bad in ("/", "%"):
        if bad in value:
            errs.append(f"may not contain '{bad}'")
    return errs


_NAME_CHECKS: dict[tuple[str, str], NameCheck] = {
    ("", "Namespace"): names.is_dns1123_label,
    ("", "Service"): names.is_dns1035_label,
    ("", "PersistentVolume"): is_path_segment_name,
    ("rbac.authorization.k8s.io", "Role"): is_path_segment_name,
    ("rbac.authorization.k8s.io", "ClusterRole"): is_path_segment_name,
    ("rbac.authorization.k8s.io", "RoleBinding"): is_path_segment_name,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): is_path_segment_name,
}


def name_check(info: ResourceInfo) -> NameCheck:
    return _NAME_CHECKS.get((info.group, info.kind), names.is_dns1123_subdomain)


def _mask_trailing_dash(value: str) -> str:
    """generateName prefixes may end in '-': validate them as if it were a letter."""
    return value[:-1] + "a" if len(value) > 1 and value.endswith("-") else value


def validate_object_meta(info: ResourceInfo, md: Any) -> Causes:
    path = Path("metadata")
    if not isinstance(md, dict):
        return [Cause.required("metadata.name", "name or generateName is required")]
    errs: Causes = []
    check = name_check(info)
    name, generate_name = md.get("name"), md.get("generateName")
    if generate_name:
        errs += msgs_to_causes(path.child("generateName"), generate_name,
                               check(_mask_trailing_dash(str(generate_name))))
    if not name:
        if not generate_name:
            errs.append(Cause.required("metadata.name", "name or generateName is required"))
    elif not isinstance(name, str):
        errs.append(Cause.type_invalid("metadata.name", name, "must be of type string"))
    else:
        errs += msgs_to_causes(path.child("name"), name, check(name))
    namespace = md.get("namespace")
    if info.namespaced:
        if not namespace:
            errs.append(Cause.required("metadata.namespace"))
        else:
            errs += msgs_to_causes(path.child("namespace"), namespace,
                                   names.is_dns1123_label(str(namespace)))
    elif namespace:
        errs.append(Cause.forbidden("metadata.namespace", "not allowed on this type"))
    errs += labels(md.get("labels"), path.child("labels"))
    errs += _annotations(md.get("annotations"), path.child("annotations"))
    for i, fin in enumerate(as_list(md.get("finalizers"))):
        errs += msgs_to_causes(path.child("finalizers").index(i), fin,
                               names.is_qualified_name(str(fin)))
    errs += _owner_references(md.get("ownerReferences"), path.child("ownerReferences"))
    return errs


def _annotations(value: Any, path: Path) -> Causes:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Cause.type_invalid(str(path), value, "must be of type object")]
    errs: Causes = []
    total = 0
    for k, v in value.items():
        errs += msgs_to_causes(path, k, names.is_qualified_name(str(k).lower()))
        if not isinstance(v, str):
            errs.append(Cause.type_invalid(str(path), v, "must be of type string"))
            continue
        total += len(k) + len(v)
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(Cause.too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE))
    return errs


def _owner_references(refs: Any, path: Path) -> Causes:
    errs: Causes = []
    controllers = []
    for i, ref in enumerate(as_list(refs)):
        ref = as_dict(ref)
        p = path.index(i)
        for field in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(field):
                errs.append(Cause.required(str(p.child(field))))
        if ref.get("controller"):
            controllers.append(f"{ref.get('kind', '')}/{ref.get('name', '')}")
    if len(controllers) > 1:
        errs.append(Cause.invalid(str(path), refs,
                                  "Only one reference can have Controller set to true. Found "
                                  '"true" in references for ' + " and ".join(controllers)))
    return errs


def validate_object_meta_update(new_md: Any, old_md: Any) -> Causes:
    new, old = as_dict(new_md), as_dict(old_md)
    path = Path("metadata")
    errs: Causes = []
    for field in ("name", "namespace", "uid", "creationTimestamp"):
        if old.get(field) and new.get(field) != old.get(field):
            errs += unchanged(new.get(field), old.get(field), path.child(field))
    if old.get("deletionTimestamp") and new.get("deletionTimestamp") != \
            old.get("deletionTimestamp"):
        errs += unchanged(new.get("deletionTimestamp"), old.get("deletionTimestamp"),
                          path.child("deletionTimestamp"))
    if old.get("deletionTimestamp"):
        added = [f for f in as_list(new.get("finalizers")) if f not in as_list(
            old.get("finalizers"))]
        if added:
            listed = ", ".join(f'"{f}"' for f in added)
            errs.append(Cause.forbidden("metadata.finalizers",
                                        "no new finalizers can be added if the object is being "
                                        f"deleted, found new finalizers []string{{{listed}}}"))
    return errs


_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("", "Pod"): pod.validate_pod,
    ("", "PodTemplate"): pod.validate_pod_template,
    ("", "ReplicationController"): apps.validate_replication_controller,
    ("", "Service"): core.validate_service,
    ("", "ConfigMap"): core.validate_configmap,
    ("", "Secret"): core.validate_secret,
    ("", "Namespace"): core.validate_namespace,
    ("", "Node"): core.validate_node,
    ("", "Event"): core.validate_event,
    ("", "Endpoints"): core.validate_endpoints,
    ("", "PersistentVolumeClaim"): core.validate_pvc,
    ("", "PersistentVolume"): core.validate_pv,
    ("", "ResourceQuota"): core.validate_resourcequota,
    ("", "LimitRange"): core.validate_limitrange,
    ("", "ServiceAccount"): core.validate_serviceaccount,
    ("apps", "Deployment"): apps.validate_deployment,
    ("apps", "ReplicaSet"): apps.validate_replicaset,
    ("apps", "DaemonSet"): apps.validate_daemonset,
    ("apps", "StatefulSet"): apps.validate_statefulset,
    ("batch", "Job"): apps.validate_job,
    ("batch", "CronJob"): apps.validate_cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): other.validate_hpa,
    ("coordination.k8s.io", "Lease"): other.validate_lease,
    ("discovery.k8s.io", "EndpointSlice"): other.validate_endpointslice,
    ("events.k8s.io", "Event"): core.validate_event,
    ("rbac.authorization.k8s.io", "Role"): other.validate_role,
    ("rbac.authorization.k8s.io", "ClusterRole"): other.validate_cluster_role,
    ("rbac.authorization.k8s.io", "RoleBinding"): other.validate_role_binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): other.validate_cluster_role_binding,
    ("storage.k8s.io", "StorageClass"): other.validate_storageclass,
    ("scheduling.k8s.io", "PriorityClass"): other.validate_priorityclass,
    ("policy", "PodDisruptionBudget"): other.validate_pdb,
    ("networking.k8s.io", "NetworkPolicy"): other.validate_networkpolicy,
    ("networking.k8s.io", "Ingress"): other.validate_ingress,
    ("networking.k8s.io", "IngressClass"): other.validate_ingressclass,
}


def validate(info: ResourceInfo, obj: Any, old: Any = None) -> list[Cause]:
    """Every field error upstream reports for this create (``old`` None) or update.

    Run it after defaulting, as the API server does.
    """
    if not isinstance(obj, dict):
        return [Cause.type_invalid("", obj, "must be of type object")]
    problems = decoding.type_problems(info, obj)
    if problems:
        # The server answers these with decoding.decode_error (400) before validating.
        return [Cause.type_invalid(p.path, p.value, f"must be of type {p.go_type}")
                for p in problems]
    errs = validate_object_meta(info, obj.get("metadata"))
    if isinstance(old, dict):
        errs += validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    validator = _VALIDATORS.get((info.group, info.kind))
    if validator is not None:
        errs += validator(obj, old if isinstance(old, dict) else None)
    return errs


def validate_create(info: ResourceInfo, obj: Any) -> list[Cause]:
    return validate(info, obj)


def validate_update(info: ResourceInfo, obj: Any, old: Any) -> list[Cause]:
    return validate(info, obj, old)


def build_invalid_error(info: ResourceInfo, name: str, causes: Sequence[Cause]) -> ApiError:
    """The 422 Invalid ApiError: ``Pod "x" is invalid: [a: Required value, ...]``."""
    return errors.invalid(info, name, causes)


def validate_or_raise(info: ResourceInfo, obj: Obj, old: Obj | None = None) -> None:
    causes = validate(info, obj, old)
    if causes:
        md = as_dict(obj.get("metadata")) if isinstance(obj, dict) else {}
        raise build_invalid_error(info, md.get("name") or md.get("generateName") or "", causes)


# --- unknown fields (fieldValidation=Strict|Warn) ---------------------------------------


def _walk_unknown(value: Any, raw: dict | None, path: str, out: list[str]) -> None:
    if raw is None:
        return
    node = schema.node(raw)
    if node.preserve_unknown:
        return
    if isinstance(value, dict):
        props = node.properties
        if props is None:
            if node.additional is not None:
                for key, item in value.items():
                    _walk_unknown(item, node.additional, f"{path}[{key}]" if path else key, out)
            return
        for key, item in value.items():
            child_path = f"{path}.{key}" if path else key
            if key in props:
                _walk_unknown(item, props[key], child_path, out)
            else:
                out.append(f'unknown field "{child_path}"')
    elif isinstance(value, list) and node.items is not None:
        for i, item in enumerate(value):
            _walk_unknown(item, node.items, f"{path}[{i}]", out)


def unknown_fields(info: ResourceInfo, obj: Any) -> list[str]:
    """``unknown field "spec.foo"`` for every field upstream's schema does not declare."""
    root = schema.definition_for(info)
    out: list[str] = []
    if root is None or not isinstance(obj, dict):
        return out
    _walk_unknown(obj, root, "", out)
    return out


def strict_decoding_error(info: ResourceInfo, problems: Sequence[str]) -> ApiError:
    """The 400 BadRequest that ``fieldValidation=Strict`` answers with."""
    return errors.bad_request(
        f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
        f"strict decoding error: {', '.join(problems)}")
