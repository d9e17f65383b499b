"""Validation of core/v1 kinds other than pods (pkg/apis/core/validation)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tinykube.api import names
from tinykube.api.errors import Cause
from tinykube.api.fieldpath import Path
from tinykube.api.quantity import parse_quantity
from tinykube.api.validate_common import (Causes, Obj, as_dict, as_list, dns_label,
                                          dns_subdomain, int_or_port_name, invalid_raw,
                                          ip_address, labels, msgs_to_causes, port_number,
                                          qualified_name, quantity, supported, unchanged)
from tinykube.api.validate_pod import PROTOCOLS, TAINT_EFFECTS

SPEC = Path("spec")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
MAX_CONFIG_SIZE = 1024 * 1024
IMMUTABLE_SET = "field is immutable when `immutable` is set"


def _service_ports(spec: dict[str, Any]) -> Causes:
    errs: Causes = []
    ports = as_list(spec.get("ports"))
    svc_type = spec.get("type")
    headless = spec.get("clusterIP") == "None"
    if not ports and not headless and svc_type != "ExternalName":
        errs.append(Cause.required(str(SPEC.child("ports"))))
    seen: set[str] = set()
    for i, port in enumerate(ports):
        p = SPEC.child("ports").index(i)
        port = as_dict(port)
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.append(Cause.required(str(p.child("name"))))
        elif name:
            errs += dns_label(name, p.child("name"))
            if name in seen:
                errs.append(Cause.duplicate(str(p.child("name")), name))
            seen.add(name)
        errs += port_number(port.get("port"), p.child("port"))
        errs += supported(port.get("protocol"), p.child("protocol"), PROTOCOLS)
        if port.get("targetPort") not in (None, 0, ""):
            errs += int_or_port_name(port["targetPort"], p.child("targetPort"))
        if port.get("nodePort"):
            if svc_type == "ClusterIP":
                errs.append(Cause.forbidden(str(p.child("nodePort")),
                                            "may not be used when `type` is 'ClusterIP'"))
            else:
                errs += port_number(port["nodePort"], p.child("nodePort"))
    return errs


def validate_service(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = supported(spec.get("type"), SPEC.child("type"), SERVICE_TYPES)
    errs += _service_ports(spec)
    errs += supported(spec.get("sessionAffinity"), SPEC.child("sessionAffinity"),
                      ("ClientIP", "None"), required_if_empty=False)
    if spec.get("type") == "ExternalName":
        if not spec.get("externalName"):
            errs.append(Cause.required(str(SPEC.child("externalName"))))
        else:
            errs += dns_subdomain(str(spec["externalName"]).rstrip("."), SPEC.child("externalName"))
    for i, ip in enumerate(as_list(spec.get("clusterIPs")) or
                           ([spec["clusterIP"]] if spec.get("clusterIP") else [])):
        if ip not in ("None", ""):
            errs += ip_address(ip, SPEC.child("clusterIPs").index(i))
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        errs += ip_address(ip, SPEC.child("externalIPs").index(i))
    errs += labels(spec.get("selector"), SPEC.child("selector"))
    if old is not None:
        errs += _service_update(spec, as_dict(old.get("spec")))
    return errs


def _service_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> Causes:
    if "ExternalName" in (spec.get("type"), old_spec.get("type")):
        return []
    old_ips = as_list(old_spec.get("clusterIPs")) or (
        [old_spec["clusterIP"]] if old_spec.get("clusterIP") else [])
    new_ips = as_list(spec.get("clusterIPs")) or (
        [spec["clusterIP"]] if spec.get("clusterIP") else [])
    if old_ips and new_ips and new_ips[0] != old_ips[0]:
        rendered = "[]string{" + ", ".join(f'"{ip}"' for ip in new_ips) + "}"
        return [invalid_raw(SPEC.child("clusterIPs").index(0), rendered, "may not change once set")]
    return []


def _config_keys(data: Any, field: str) -> Causes:
    errs: Causes = []
    for key in as_dict(data):
        errs += msgs_to_causes(Path(field).key(key), key, names.is_config_map_key(key))
    return errs


def _immutable_data(obj: Obj, old: Obj | None, fields: tuple[str, ...]) -> Causes:
    if old is None or not old.get("immutable"):
        return []
    errs: Causes = []
    if not obj.get("immutable"):
        errs.append(Cause.forbidden("immutable", IMMUTABLE_SET))
    for field in fields:
        if (obj.get(field) or {}) != (old.get(field) or {}):
            errs.append(Cause.forbidden(field, IMMUTABLE_SET))
    return errs


def validate_configmap(obj: Obj, old: Obj | None) -> Causes:
    errs = _config_keys(obj.get("data"), "data") + _config_keys(obj.get("binaryData"),
                                                                  "binaryData")
    for key in as_dict(obj.get("data")):
        if key in as_dict(obj.get("binaryData")):
            errs.append(Cause.invalid(str(Path("data").key(key)), key,
                                      "duplicate of key present in binaryData"))
    size = sum(len(k) + len(str(v)) for k, v in as_dict(obj.get("data")).items())
    size += sum(len(k) + len(str(v)) * 3 // 4 for k, v in as_dict(obj.get("binaryData")).items())
    if size > MAX_CONFIG_SIZE:
        errs.append(Cause.too_long("", MAX_CONFIG_SIZE))
    return errs + _immutable_data(obj, old, ("data", "binaryData"))


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(obj: Obj, old: Obj | None) -> Causes:
    data = as_dict(obj.get("data"))
    errs = _config_keys(data, "data")
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            errs.append(Cause.invalid(str(Path("data").key(key)), "<secret contents redacted>",
                                      "illegal base64 data"))
    secret_type = obj.get("type") or "Opaque"
    for key in _SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if key not in data and key not in as_dict(obj.get("stringData")):
            errs.append(Cause.required(str(Path("data").key(key))))
    if secret_type == "kubernetes.io/service-account-token":
        annotations = as_dict(as_dict(obj.get("metadata")).get("annotations"))
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(Cause.required(
                "metadata.annotations[kubernetes.io/service-account.name]"))
    if old is not None:
        errs += unchanged(obj.get("type") or "Opaque", old.get("type") or "Opaque", Path("type"))
        errs += _immutable_data(obj, old, ("data",))
    return errs


def validate_namespace(obj: Obj, old: Obj | None) -> Causes:
    errs: Causes = []
    for i, fin in enumerate(as_list(as_dict(obj.get("spec")).get("finalizers"))):
        errs += qualified_name(fin, SPEC.child("finalizers").index(i))
    return errs


def validate_node(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs: Causes = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(as_list(spec.get("taints"))):
        p = SPEC.child("taints").index(i)
        taint = as_dict(taint)
        errs += qualified_name(taint.get("key") or "", p.child("key"))
        if taint.get("value"):
            errs += msgs_to_causes(p.child("value"), taint["value"],
                                   names.is_valid_label_value(taint["value"]))
        errs += supported(taint.get("effect"), p.child("effect"), TAINT_EFFECTS)
        ident = (taint.get("key") or "", taint.get("effect") or "")
        if ident in seen:
            errs.append(Cause.duplicate(str(p), f"{ident[0]}:{ident[1]}"))
        seen.add(ident)
    return errs


def validate_event(obj: Obj, old: Obj | None) -> Causes:
    md = as_dict(obj.get("metadata"))
    involved = as_dict(obj.get("involvedObject") or obj.get("regarding"))
    field = "involvedObject" if "involvedObject" in obj else "regarding"
    ns = md.get("namespace") or ""
    inv_ns = involved.get("namespace") or ""
    if inv_ns and ns and inv_ns != ns:
        return [Cause.invalid(f"{field}.namespace", inv_ns, "does not match event.namespace")]
    return []


def validate_endpoints(obj: Obj, old: Obj | None) -> Causes:
    errs: Causes = []
    for i, subset in enumerate(as_list(obj.get("subsets"))):
        p = Path("subsets").index(i)
        subset = as_dict(subset)
        for field in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(as_list(subset.get(field))):
                errs += ip_address(as_dict(addr).get("ip"), p.child(field).index(j).child("ip"))
        for j, port in enumerate(as_list(subset.get("ports"))):
            port = as_dict(port)
            errs += port_number(port.get("port"), p.child("ports").index(j).child("port"))
            errs += supported(port.get("protocol"), p.child("ports").index(j).child("protocol"),
                              PROTOCOLS)
    return errs


ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")


def _access_modes(modes: Any, path: Path) -> Causes:
    if not as_list(modes):
        return [Cause.required(str(path), "at least 1 access mode is required")]
    errs: Causes = []
    for mode in as_list(modes):
        errs += supported(mode, path, ACCESS_MODES)
    return errs


def validate_pvc(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = _access_modes(spec.get("accessModes"), SPEC.child("accessModes"))
    storage = as_dict(as_dict(spec.get("resources")).get("requests")).get("storage")
    storage_path = SPEC.child("resources").key("storage")
    if storage is None:
        errs.append(Cause.required(str(storage_path)))
    else:
        quantity_errs = quantity(storage, storage_path)
        errs += quantity_errs
        if not quantity_errs and parse_quantity(storage) <= 0:
            errs.append(Cause.invalid(str(storage_path), storage, "must be greater than zero"))
    if spec.get("volumeMode") is not None:
        errs += supported(spec["volumeMode"], SPEC.child("volumeMode"), ("Block", "Filesystem"))
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        strip = ("resources", "volumeAttributesClassName")
        new_rest = {k: v for k, v in spec.items() if k not in strip}
        old_rest = {k: v for k, v in old_spec.items() if k not in strip}
        if not old_spec.get("volumeName"):
            new_rest.pop("volumeName", None)
            old_rest.pop("volumeName", None)
        if new_rest != old_rest:
            errs.append(Cause.forbidden("spec", "spec is immutable after creation except "
                                                "resources.requests and "
                                                "volumeAttributesClassName for bound claims"))
    return errs


_PV_SOURCES = ("hostPath", "local", "nfs", "csi", "gcePersistentDisk", "awsElasticBlockStore",
               "iscsi", "glusterfs", "rbd", "cinder", "cephfs", "fc", "flocker", "flexVolume",
               "azureFile", "azureDisk", "vsphereVolume", "quobyte", "photonPersistentDisk",
               "portworxVolume", "scaleIO", "storageos")


def validate_pv(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = _access_modes(spec.get("accessModes"), SPEC.child("accessModes"))
    capacity = as_dict(spec.get("capacity"))
    if "storage" not in capacity:
        errs.append(Cause.required(str(SPEC.child("capacity"))))
    else:
        errs += quantity(capacity["storage"], SPEC.child("capacity").key("storage"))
    if not any(spec.get(k) is not None for k in _PV_SOURCES):
        errs.append(Cause.required("spec", "must specify a volume type"))
    errs += supported(spec.get("persistentVolumeReclaimPolicy"),
                      SPEC.child("persistentVolumeReclaimPolicy"),
                      ("Delete", "Recycle", "Retain"), required_if_empty=False)
    return errs


def validate_resourcequota(obj: Obj, old: Obj | None) -> Causes:
    errs: Causes = []
    for section in ("hard",):
        for name, value in as_dict(as_dict(obj.get("spec")).get(section)).items():
            p = SPEC.child(section).key(name)
            q_errs = quantity(value, p)
            errs += q_errs
            if not q_errs and parse_quantity(value) < 0:
                errs.append(Cause.invalid(str(p), value, "must be greater than or equal to 0"))
    return errs


def validate_limitrange(obj: Obj, old: Obj | None) -> Causes:
    errs: Causes = []
    for i, limit in enumerate(as_list(as_dict(obj.get("spec")).get("limits"))):
        p = SPEC.child("limits").index(i)
        limit = as_dict(limit)
        errs += supported(limit.get("type"), p.child("type"),
                          ("Container", "PersistentVolumeClaim", "Pod"))
        for section in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            for name, value in as_dict(limit.get(section)).items():
                errs += quantity(value, p.child(section).key(name))
    return errs


def validate_serviceaccount(obj: Obj, old: Obj | None) -> Causes:
    errs: Causes = []
    for i, ref in enumerate(as_list(obj.get("secrets"))):
        name = as_dict(ref).get("name")
        if name:
            errs += dns_subdomain(name, Path("secrets").index(i).child("name"))
    return errs

