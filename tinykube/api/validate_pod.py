"""Pod and pod template validation (pkg/apis/core/validation: ValidatePodSpec and friends)."""

from __future__ import annotations

from typing import Any

from tinykube.api.errors import Cause
from tinykube.api.fieldpath import Path
from tinykube.api.quantity import parse_quantity
from tinykube.api import validate_ephemeral
from tinykube.api.validate_common import (Causes, Obj, as_dict, as_list, dns_label,
                                          dns_subdomain, in_range, labels, port_name,
                                          port_number, qualified_name, supported)
from tinykube.api.meta import json_copy

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("FallbackToLogsOnError", "File")
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
TOLERATION_OPERATORS = ("Equal", "Exists")

VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret",
    "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder",
    "cephfs", "flocker", "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume",
    "quobyte", "azureDisk", "photonPersistentDisk", "projected", "portworxVolume", "scaleIO",
    "storageos", "csi", "ephemeral", "image")

ENV_NAME_MSG = ("a valid environment variable name must consist only of printable ASCII "
                "characters other than '='")


def _env_name(value: Any, path: Path) -> Causes:
    if not isinstance(value, str) or not value:
        return [Cause.required(str(path))]
    if "=" in value or any(not 32 <= ord(ch) <= 126 for ch in value):
        return [Cause.invalid(str(path), value, ENV_NAME_MSG)]
    return []


def _resources(res: Any, path: Path) -> Causes:
    res = as_dict(res)
    errs: Causes = []
    parsed: dict[str, dict[str, Any]] = {}
    for section in ("limits", "requests"):
        values = res.get(section)
        if values is None:
            continue
        if not isinstance(values, dict):
            errs.append(Cause.type_invalid(str(path.child(section)), values,
                                           "must be of type object"))
            continue
        parsed[section] = {}
        for name, raw in values.items():
            key_path = path.child(section).key(name)
            try:
                value = parse_quantity(raw)
            except ValueError as exc:
                errs.append(Cause.invalid(str(key_path), raw, str(exc)))
                continue
            if value < 0:
                errs.append(Cause.invalid(str(key_path), raw, "must be greater than or equal to 0"))
            parsed[section][name] = value
    limits, requests = parsed.get("limits", {}), parsed.get("requests", {})
    for name, req in requests.items():
        if name in limits and req > limits[name]:
            errs.append(Cause.invalid(str(path.child("requests").key(name)),
                                      str(as_dict(res.get("requests")).get(name)),
                                      f"must be less than or equal to {name} limit of "
                                      f"{as_dict(res.get('limits')).get(name)}"))
    return errs


def _ports(ports: Any, path: Path, port_names: set[str]) -> Causes:
    errs: Causes = []
    for i, port in enumerate(as_list(ports)):
        p = path.index(i)
        port = as_dict(port)
        if port.get("name"):
            errs += port_name(port["name"], p.child("name"))
            if port["name"] in port_names:
                errs.append(Cause.duplicate(str(p.child("name")), port["name"]))
            port_names.add(port["name"])
        errs += port_number(port.get("containerPort"), p.child("containerPort"))
        if port.get("hostPort"):
            errs += port_number(port.get("hostPort"), p.child("hostPort"))
        errs += supported(port.get("protocol"), p.child("protocol"), PROTOCOLS)
    return errs


def _env(env: Any, path: Path) -> Causes:
    errs: Causes = []
    for i, var in enumerate(as_list(env)):
        p = path.index(i)
        var = as_dict(var)
        errs += _env_name(var.get("name"), p.child("name"))
        if var.get("valueFrom") is not None and var.get("value"):
            errs.append(Cause.invalid(str(p.child("valueFrom")), "",
                                      "may not be specified when `value` is not empty"))
    return errs


def _volume_mounts(mounts: Any, path: Path, volume_names: set[str]) -> Causes:
    errs: Causes = []
    seen: set[str] = set()
    for i, mount in enumerate(as_list(mounts)):
        p = path.index(i)
        mount = as_dict(mount)
        name = mount.get("name")
        if not name:
            errs.append(Cause.required(str(p.child("name"))))
        elif name not in volume_names:
            errs.append(Cause.not_found(str(p.child("name")), name))
        mount_path = mount.get("mountPath")
        if not mount_path:
            errs.append(Cause.required(str(p.child("mountPath"))))
        elif mount_path in seen:
            errs.append(Cause.invalid(str(p.child("mountPath")), mount_path, "must be unique"))
        else:
            seen.add(mount_path)
    return errs


def _container(c: Any, path: Path, volume_names: set[str], port_names: set[str]) -> Causes:
    if not isinstance(c, dict):
        return [Cause.type_invalid(str(path), c, "must be of type object")]
    errs: Causes = []
    name = c.get("name")
    if not name:
        errs.append(Cause.required(str(path.child("name"))))
    else:
        errs += dns_label(name, path.child("name"))
    if not c.get("image"):
        errs.append(Cause.required(str(path.child("image"))))
    if c.get("imagePullPolicy") is not None:
        errs += supported(c.get("imagePullPolicy"), path.child("imagePullPolicy"), PULL_POLICIES)
    if c.get("terminationMessagePolicy") is not None:
        errs += supported(c.get("terminationMessagePolicy"),
                          path.child("terminationMessagePolicy"), TERMINATION_MESSAGE_POLICIES)
    errs += _ports(c.get("ports"), path.child("ports"), port_names)
    errs += _env(c.get("env"), path.child("env"))
    errs += _resources(c.get("resources"), path.child("resources"))
    errs += _volume_mounts(c.get("volumeMounts"), path.child("volumeMounts"), volume_names)
    return errs


def _volume(volume: Any, path: Path) -> Causes:
    volume = as_dict(volume)
    errs: Causes = []
    name = volume.get("name")
    if not name:
        errs.append(Cause.required(str(path.child("name"))))
    else:
        errs += dns_label(name, path.child("name"))
    sources = [k for k in VOLUME_SOURCES if volume.get(k) is not None]
    if not sources:
        errs.append(Cause.required(str(path), "must specify a volume type"))
    for extra in sources[1:]:
        errs.append(Cause.forbidden(str(path.child(extra)),
                                    "may not specify more than 1 volume type"))
    if volume.get("configMap") is not None and not as_dict(volume["configMap"]).get("name"):
        errs.append(Cause.required(str(path.child("configMap", "name"))))
    if volume.get("secret") is not None and not as_dict(volume["secret"]).get("secretName"):
        errs.append(Cause.required(str(path.child("secret", "secretName"))))
    if volume.get("hostPath") is not None and not as_dict(volume["hostPath"]).get("path"):
        errs.append(Cause.required(str(path.child("hostPath", "path"))))
    pvc = volume.get("persistentVolumeClaim")
    if pvc is not None and not as_dict(pvc).get("claimName"):
        errs.append(Cause.required(str(path.child("persistentVolumeClaim", "claimName"))))
    return errs


def _tolerations(tolerations: Any, path: Path) -> Causes:
    errs: Causes = []
    for i, tol in enumerate(as_list(tolerations)):
        p = path.index(i)
        tol = as_dict(tol)
        key = tol.get("key") or ""
        operator = tol.get("operator") or "Equal"
        if key:
            errs += qualified_name(key, p.child("key"))
        elif operator != "Exists":
            errs.append(Cause.invalid(str(p.child("operator")), operator,
                                      'operator must be Exists when `key` is empty, which means '
                                      '"match all values and all keys"'))
        if operator == "Exists" and tol.get("value"):
            errs.append(Cause.invalid(str(p.child("operator")), operator,
                                      "value must be empty when `operator` is 'Exists'"))
        elif operator not in TOLERATION_OPERATORS:
            errs.append(Cause.not_supported(str(p.child("operator")), operator,
                                            list(TOLERATION_OPERATORS)))
        effect = tol.get("effect") or ""
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(Cause.invalid(str(p.child("effect")), effect,
                                      "effect must be 'NoExecute' when `tolerationSeconds` is "
                                      "set"))
        if effect:
            errs += supported(effect, p.child("effect"), TAINT_EFFECTS)
    return errs


NODE_SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")
LABEL_SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "In", "NotIn")
WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")


def _node_selector_requirement(req: Any, path: Path, *, field_selector: bool) -> Causes:
    req = as_dict(req)
    errs: Causes = []
    op = req.get("operator")
    values = as_list(req.get("values"))
    if field_selector:
        if req.get("key") != "metadata.name":
            errs.append(Cause.invalid(str(path.child("key")), req.get("key"),
                                      "not a valid field selector key"))
        if op not in ("In", "NotIn"):
            errs.append(Cause.invalid(str(path.child("operator")), op,
                                      "not a valid selector operator"))
        elif len(values) != 1:
            errs.append(Cause.required(str(path.child("values")),
                                       "must be only one value when `operator` is 'In' or "
                                       "'NotIn' for node field selector"))
        return errs
    errs += qualified_name(req.get("key") or "", path.child("key"))
    if op in ("In", "NotIn") and not values:
        errs.append(Cause.required(str(path.child("values")),
                                   "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist") and values:
        errs.append(Cause.forbidden(str(path.child("values")),
                                    "may not be specified when `operator` is 'Exists' or "
                                    "'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(Cause.required(str(path.child("values")),
                                       "must be specified single value when `operator` is 'Lt' "
                                       "or 'Gt'"))
        elif not str(values[0]).lstrip("-").isdigit():
            errs.append(Cause.invalid(str(path.child("values").index(0)), values[0],
                                      "must be an integer"))
    elif op not in NODE_SELECTOR_OPERATORS:
        errs.append(Cause.invalid(str(path.child("operator")), op,
                                  "not a valid selector operator"))
    return errs


def _node_selector_term(term: Any, path: Path) -> Causes:
    term = as_dict(term)
    errs: Causes = []
    for i, req in enumerate(as_list(term.get("matchExpressions"))):
        errs += _node_selector_requirement(req, path.child("matchExpressions").index(i),
                                           field_selector=False)
    for i, req in enumerate(as_list(term.get("matchFields"))):
        errs += _node_selector_requirement(req, path.child("matchFields").index(i),
                                           field_selector=True)
    return errs


def _affinity(affinity: Any, path: Path) -> Causes:
    """Node affinity terms and weights (pod affinity is checked for its topology keys)."""
    affinity = as_dict(affinity)
    errs: Causes = []
    node = as_dict(affinity.get("nodeAffinity"))
    required_ = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required_ is not None:
        rpath = path.child("nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
        terms = as_list(as_dict(required_).get("nodeSelectorTerms"))
        if not terms:
            errs.append(Cause.required(str(rpath.child("nodeSelectorTerms")),
                                       "must have at least one node selector term"))
        for i, term in enumerate(terms):
            errs += _node_selector_term(term, rpath.child("nodeSelectorTerms").index(i))
    ppath = path.child("nodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution")
    for i, pref in enumerate(as_list(node.get("preferredDuringSchedulingIgnoredDuringExecution"))):
        pref = as_dict(pref)
        errs += in_range(pref.get("weight"), ppath.index(i).child("weight"), 1, 100)
        errs += _node_selector_term(pref.get("preference"), ppath.index(i).child("preference"))
    for kind in ("podAffinity", "podAntiAffinity"):
        section = as_dict(affinity.get(kind))
        rpath = path.child(kind, "requiredDuringSchedulingIgnoredDuringExecution")
        for i, term in enumerate(as_list(section.get(
                "requiredDuringSchedulingIgnoredDuringExecution"))):
            if not as_dict(term).get("topologyKey"):
                errs.append(Cause.required(str(rpath.index(i).child("topologyKey")),
                                           "can not be empty"))
        ppath = path.child(kind, "preferredDuringSchedulingIgnoredDuringExecution")
        for i, pref in enumerate(as_list(section.get(
                "preferredDuringSchedulingIgnoredDuringExecution"))):
            pref = as_dict(pref)
            errs += in_range(pref.get("weight"), ppath.index(i).child("weight"), 1, 100)
            if not as_dict(pref.get("podAffinityTerm")).get("topologyKey"):
                errs.append(Cause.required(
                    str(ppath.index(i).child("podAffinityTerm", "topologyKey")),
                    "can not be empty"))
    return errs


def _topology_spread(constraints: Any, path: Path) -> Causes:
    errs: Causes = []
    seen: set[tuple[str, str]] = set()
    for i, constraint in enumerate(as_list(constraints)):
        p = path.index(i)
        constraint = as_dict(constraint)
        skew = constraint.get("maxSkew")
        if not isinstance(skew, int) or isinstance(skew, bool) or skew <= 0:
            errs.append(Cause.invalid(str(p.child("maxSkew")), skew, "must be greater than zero"))
        key = constraint.get("topologyKey")
        if not key:
            errs.append(Cause.required(str(p.child("topologyKey")), "can not be empty"))
        else:
            errs += qualified_name(key, p.child("topologyKey"))
        when = constraint.get("whenUnsatisfiable")
        errs += supported(when, p.child("whenUnsatisfiable"), WHEN_UNSATISFIABLE)
        ident = (str(key), str(when))
        if ident in seen:
            errs.append(Cause.duplicate(str(p), f"{{{key}, {when}}}"))
        seen.add(ident)
    return errs


def _host_network_ports(spec: dict[str, Any], path: Path) -> Causes:
    """With hostNetwork, a container's hostPort must equal its containerPort."""
    if not spec.get("hostNetwork"):
        return []
    errs: Causes = []
    for field in ("initContainers", "containers"):
        for i, c in enumerate(as_list(spec.get(field))):
            for j, port in enumerate(as_list(as_dict(c).get("ports"))):
                port = as_dict(port)
                host = port.get("hostPort")
                if host and host != port.get("containerPort"):
                    errs.append(Cause.invalid(
                        str(path.child(field).index(i).child("ports").index(j).child("hostPort")),
                        host, "must match `containerPort` when `hostNetwork` is true"))
    return errs


def validate_pod_spec(spec: Any, path: Path, *,
                      restart_policies: tuple[str, ...] = RESTART_POLICIES,
                      restart_message: str | None = None) -> Causes:
    """``ValidatePodSpec``; workloads narrow the allowed restart policies."""
    if not isinstance(spec, dict):
        return [Cause.required(str(path))] if spec is None else [
            Cause.type_invalid(str(path), spec, "must be of type object")]
    errs: Causes = []
    volume_names: set[str] = set()
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        errs += _volume(volume, path.child("volumes").index(i))
        name = as_dict(volume).get("name")
        if name in volume_names:
            errs.append(Cause.duplicate(str(path.child("volumes").index(i).child("name")), name))
        if name:
            volume_names.add(name)
    containers = spec.get("containers")
    if not as_list(containers):
        errs.append(Cause.required(str(path.child("containers"))))
    names_seen: set[str] = set()
    port_names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, c in enumerate(as_list(spec.get(field))):
            cpath = path.child(field).index(i)
            errs += _container(c, cpath, volume_names, port_names)
            name = as_dict(c).get("name")
            if name and name in names_seen:
                errs.append(Cause.duplicate(str(cpath.child("name")), name))
            if name:
                names_seen.add(name)
    errs += validate_ephemeral.ephemeral_containers(
        spec, path, lambda c, cpath: _container(c, cpath, volume_names, set()))
    policy = spec.get("restartPolicy")
    if restart_message and policy not in restart_policies:
        errs.append(Cause.required(str(path.child("restartPolicy")), restart_message))
    else:
        errs += supported(policy, path.child("restartPolicy"), restart_policies)
    errs += supported(spec.get("dnsPolicy"), path.child("dnsPolicy"), DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and not spec.get("dnsConfig"):
        errs.append(Cause.required(str(path.child("dnsConfig")),
                                   "must provide `dnsConfig` when `dnsPolicy` is None"))
    errs += labels(spec.get("nodeSelector"), path.child("nodeSelector"))
    if spec.get("serviceAccountName"):
        errs += dns_subdomain(spec["serviceAccountName"], path.child("serviceAccountName"))
    if spec.get("nodeName"):
        errs += dns_subdomain(spec["nodeName"], path.child("nodeName"))
    if spec.get("hostname"):
        errs += dns_label(spec["hostname"], path.child("hostname"))
    if spec.get("subdomain"):
        errs += dns_label(spec["subdomain"], path.child("subdomain"))
    if spec.get("priorityClassName"):
        errs += dns_subdomain(spec["priorityClassName"], path.child("priorityClassName"))
    errs += in_range(spec.get("activeDeadlineSeconds"), path.child("activeDeadlineSeconds"),
                     1, 4294967295)
    errs += _tolerations(spec.get("tolerations"), path.child("tolerations"))
    errs += _affinity(spec.get("affinity"), path.child("affinity"))
    errs += _topology_spread(spec.get("topologySpreadConstraints"),
                             path.child("topologySpreadConstraints"))
    errs += _host_network_ports(spec, path)
    return errs


def validate_template(template: Any, path: Path, **kw: Any) -> Causes:
    """A PodTemplateSpec: its labels and annotations, then the pod spec."""
    template = as_dict(template)
    md = as_dict(template.get("metadata"))
    errs = labels(md.get("labels"), path.child("metadata", "labels"))
    return errs + validate_pod_spec(template.get("spec"), path.child("spec"), **kw)


POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it "
    "to be set to 1 if it was previously negative)")


def _copy_images(new: list, old: list) -> None:
    if len(new) != len(old):
        return
    for n, o in zip(new, old):
        if isinstance(n, dict) and isinstance(o, dict) and "image" in o:
            n["image"] = o["image"]


def validate_pod_update(new_spec: Any, old_spec: Any) -> Causes:
    """Only images, a shorter activeDeadlineSeconds, added tolerations and a few more may
    change. Setting ``nodeName`` on an unbound pod is allowed too: it is how binding lands."""
    new = json_copy(as_dict(new_spec))
    old = as_dict(old_spec)
    for field in ("containers", "initContainers"):
        _copy_images(as_list(new.get(field)), as_list(old.get(field)))
    new_ads, old_ads = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if new_ads is not None and (old_ads is None or (isinstance(new_ads, int) and
                                                    isinstance(old_ads, int) and
                                                    0 < new_ads <= old_ads)):
        _restore(new, old, "activeDeadlineSeconds")
    old_tols = as_list(old.get("tolerations"))
    if all(t in as_list(new.get("tolerations")) for t in old_tols):
        _restore(new, old, "tolerations")
    old_grace = old.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and \
            new.get("terminationGracePeriodSeconds") == 1:
        _restore(new, old, "terminationGracePeriodSeconds")
    if not old.get("nodeName"):
        _restore(new, old, "nodeName")
    if all(g in as_list(old.get("schedulingGates")) for g in as_list(new.get("schedulingGates"))):
        _restore(new, old, "schedulingGates")
    _restore(new, old, "ephemeralContainers")
    if new != old:
        return [Cause.forbidden("spec", POD_UPDATE_FORBIDDEN)]
    return []


def _restore(new: dict, old: dict, field: str) -> None:
    if field in old:
        new[field] = json_copy(old[field])
    else:
        new.pop(field, None)


def validate_pod(obj: Obj, old: Obj | None) -> Causes:
    if old is not None and obj.get("spec") == old.get("spec"):
        # The stored spec was valid when written; an update that leaves it as it is (every
        # status write: the status strategy keeps the old spec) has nothing to report on it.
        return []
    errs = validate_pod_spec(obj.get("spec"), Path("spec"))
    if old is None:
        return errs + validate_ephemeral.on_create(as_dict(obj.get("spec")))
    errs += validate_pod_update(obj.get("spec"), old.get("spec"))
    return errs + validate_ephemeral.on_update(obj, old)


def validate_pod_template(obj: Obj, old: Obj | None) -> Causes:
    return validate_template(obj.get("template"), Path("template"))

