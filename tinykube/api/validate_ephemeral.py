"""Ephemeral containers (``kubectl debug``): what one may hold, and how the list may change.

They are added to a running pod through ``pods/ephemeralcontainers`` only, never set on
create, never removed or changed once added, and never on static pods. They must not be
relied on by the workload, so ports, probes, lifecycle hooks, resources, a resize or
restart policy and subPath mounts are forbidden in them, as upstream's validation has it.
"""

from __future__ import annotations

from typing import Any, Callable

from tinykube.api.errors import Cause
from tinykube.api.fieldpath import Path
from tinykube.api.validate_common import Causes, as_dict, as_list


FORBIDDEN = "cannot be set for an Ephemeral Container"
NOT_ALLOWED = ("ports", "resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
               "resizePolicy", "restartPolicy")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

ContainerCheck = Callable[[Any, Path], Causes]


def ephemeral_containers(spec: dict[str, Any], path: Path, check_container: ContainerCheck) -> Causes:
    """``spec.ephemeralContainers``: each a valid container, named uniquely across the pod,
    targeting one of the pod's own containers, without the fields a workload relies on."""
    errs: Causes = []
    others = {as_dict(c).get("name") for field in ("initContainers", "containers") for c in as_list(spec.get(field))}
    names = set(others)
    for i, ec in enumerate(as_list(spec.get("ephemeralContainers"))):
        cpath = path.child("ephemeralContainers").index(i)
        errs += check_container(ec, cpath)
        ec = as_dict(ec)
        name = ec.get("name")
        if name in names:
            errs.append(Cause.duplicate(str(cpath.child("name")), name))
        elif name:
            names.add(name)
        target = ec.get("targetContainerName")
        if target and target not in others:
            errs.append(Cause.not_found(str(cpath.child("targetContainerName")), target))
        errs += [Cause.forbidden(str(cpath.child(field)), FORBIDDEN) for field in NOT_ALLOWED if ec.get(field)]
        for j, mount in enumerate(as_list(ec.get("volumeMounts"))):
            for field in ("subPath", "subPathExpr"):
                if as_dict(mount).get(field):
                    errs.append(Cause.forbidden(str(cpath.child("volumeMounts").index(j).child(field)), FORBIDDEN))
    return errs


def on_create(spec: dict[str, Any]) -> Causes:
    if as_list(spec.get("ephemeralContainers")):
        return [Cause.forbidden("spec.ephemeralContainers", "cannot be set on create")]
    return []


def on_update(new: dict[str, Any], old: dict[str, Any]) -> Causes:
    """Ephemeral containers may be added; none may be removed or changed."""
    new_list = as_list(as_dict(new.get("spec")).get("ephemeralContainers"))
    old_list = as_list(as_dict(old.get("spec")).get("ephemeralContainers"))
    if new_list == old_list:
        return []
    if MIRROR_ANNOTATION in as_dict(as_dict(old.get("metadata")).get("annotations")):
        return [Cause.forbidden("", "static pods do not support ephemeral containers")]
    path = "spec.ephemeralContainers"
    by_name = {as_dict(c).get("name"): c for c in new_list}
    errs: Causes = []
    for c in old_list:
        name = as_dict(c).get("name")
        if name not in by_name:
            errs.append(Cause.forbidden(path, f'existing ephemeral containers "{name}" may not be removed\n'))
        elif by_name[name] != c:
            errs.append(Cause.forbidden(f"{path}[{name}]", f'existing ephemeral containers "{name}" may not be changed\n'))
    return errs
