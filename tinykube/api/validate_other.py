"""Validation of the non-core, non-workload groups: RBAC, storage, scheduling, policy,
networking, coordination, discovery and autoscaling."""

from __future__ import annotations

from tinykube.api.errors import Cause
from tinykube.api.fieldpath import Path
from tinykube.api.validate_common import (Causes, Obj, as_dict, as_list, dns_subdomain,
                                          int_or_port_name, invalid_raw, labels, non_negative,
                                          port_number, positive, required, supported, unchanged)
from tinykube.api.validate_pod import PROTOCOLS

SPEC = Path("spec")
RBAC_GROUP = "rbac.authorization.k8s.io"


def _rules(obj: Obj, namespaced: bool) -> Causes:
    errs: Causes = []
    for i, rule in enumerate(as_list(obj.get("rules"))):
        p = Path("rules").index(i)
        rule = as_dict(rule)
        if not as_list(rule.get("verbs")):
            errs.append(Cause.required(str(p.child("verbs")),
                                       "verbs must contain at least one value"))
        urls = as_list(rule.get("nonResourceURLs"))
        if urls:
            if namespaced:
                errs.append(Cause.invalid(str(p.child("nonResourceURLs")), urls,
                                          "namespaced rules cannot apply to non-resource URLs"))
            if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")):
                errs.append(Cause.invalid(str(p.child("nonResourceURLs")), urls,
                                          "rules cannot apply to both regular resources and "
                                          "non-resource URLs"))
            continue
        if not as_list(rule.get("apiGroups")):
            errs.append(Cause.required(str(p.child("apiGroups")),
                                       "resource rules must supply at least one api group"))
        if not as_list(rule.get("resources")):
            errs.append(Cause.required(str(p.child("resources")),
                                       "resource rules must supply at least one resource"))
    return errs


def validate_role(obj: Obj, old: Obj | None) -> Causes:
    return _rules(obj, namespaced=True)


def validate_cluster_role(obj: Obj, old: Obj | None) -> Causes:
    if obj.get("aggregationRule"):
        return []
    return _rules(obj, namespaced=False)


def _binding(obj: Obj, old: Obj | None, kinds_allowed: tuple[str, ...]) -> Causes:
    ref = as_dict(obj.get("roleRef"))
    errs = supported(ref.get("apiGroup"), Path("roleRef").child("apiGroup"), (RBAC_GROUP,))
    errs += supported(ref.get("kind"), Path("roleRef").child("kind"), kinds_allowed)
    if not ref.get("name"):
        errs.append(Cause.required("roleRef.name"))
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        p = Path("subjects").index(i)
        subject = as_dict(subject)
        if not subject.get("name"):
            errs.append(Cause.required(str(p.child("name"))))
        kind = subject.get("kind")
        errs += supported(kind, p.child("kind"), ("ServiceAccount", "User", "Group"))
        if kind == "ServiceAccount" and subject.get("apiGroup"):
            errs.append(Cause.not_supported(str(p.child("apiGroup")), subject["apiGroup"], [""]))
        if kind in ("User", "Group") and subject.get("apiGroup") not in (None, RBAC_GROUP):
            errs.append(Cause.not_supported(str(p.child("apiGroup")), subject["apiGroup"],
                                            [RBAC_GROUP]))
    if old is not None and as_dict(old.get("roleRef")) != ref:
        errs.append(invalid_raw(Path("roleRef"),
                                f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", '
                                f'Kind:"{ref.get("kind", "")}", Name:"{ref.get("name", "")}"}}',
                                "cannot change roleRef"))
    return errs


def validate_role_binding(obj: Obj, old: Obj | None) -> Causes:
    return _binding(obj, old, ("Role", "ClusterRole"))


def validate_cluster_role_binding(obj: Obj, old: Obj | None) -> Causes:
    return _binding(obj, old, ("ClusterRole",))


def validate_storageclass(obj: Obj, old: Obj | None) -> Causes:
    errs: Causes = []
    if not obj.get("provisioner"):
        errs.append(Cause.required("provisioner"))
    errs += supported(obj.get("reclaimPolicy"), Path("reclaimPolicy"), ("Delete", "Retain"),
                      required_if_empty=False)
    errs += supported(obj.get("volumeBindingMode"), Path("volumeBindingMode"),
                      ("Immediate", "WaitForFirstConsumer"), required_if_empty=False)
    if old is not None:
        if (obj.get("parameters") or {}) != (old.get("parameters") or {}):
            errs.append(Cause.forbidden("parameters", "updates to parameters are forbidden."))
        if obj.get("provisioner") != old.get("provisioner"):
            errs.append(Cause.forbidden("provisioner", "updates to provisioner are forbidden."))
    return errs


def validate_priorityclass(obj: Obj, old: Obj | None) -> Causes:
    errs: Causes = []
    name = as_dict(obj.get("metadata")).get("name") or ""
    if name.startswith("system-") and name not in ("system-node-critical",
                                                   "system-cluster-critical"):
        errs.append(Cause.invalid("metadata.name", name,
                                  "priority class names with 'system-' prefix are reserved."))
    if not isinstance(obj.get("value"), int) or isinstance(obj.get("value"), bool):
        errs.append(Cause.required("value"))
    errs += supported(obj.get("preemptionPolicy"), Path("preemptionPolicy"),
                      ("Never", "PreemptLowerPriority"), required_if_empty=False)
    if old is not None:
        if obj.get("value") != old.get("value"):
            errs.append(Cause.forbidden("value", "may not be changed in an update."))
        errs += unchanged(obj.get("preemptionPolicy"), old.get("preemptionPolicy"),
                          Path("preemptionPolicy"))
    return errs


def validate_pdb(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs: Causes = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(Cause.invalid("spec", spec, "minAvailable and maxUnavailable cannot be both "
                                                "set"))
    errs += supported(spec.get("unhealthyPodEvictionPolicy"),
                      SPEC.child("unhealthyPodEvictionPolicy"), ("AlwaysAllow", "IfHealthyBudget"),
                      required_if_empty=False)
    return errs


def validate_networkpolicy(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = labels(as_dict(spec.get("podSelector")).get("matchLabels"),
                  SPEC.child("podSelector", "matchLabels"))
    for i, ptype in enumerate(as_list(spec.get("policyTypes"))):
        errs += supported(ptype, SPEC.child("policyTypes").index(i), ("Ingress", "Egress"))
    for direction in ("ingress", "egress"):
        for i, rule in enumerate(as_list(spec.get(direction))):
            for j, port in enumerate(as_list(as_dict(rule).get("ports"))):
                p = SPEC.child(direction).index(i).child("ports").index(j)
                port = as_dict(port)
                errs += supported(port.get("protocol"), p.child("protocol"), PROTOCOLS,
                                  required_if_empty=False)
                if port.get("port") is not None:
                    errs += int_or_port_name(port["port"], p.child("port"))
    return errs


PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def validate_ingress(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs: Causes = []
    for i, rule in enumerate(as_list(spec.get("rules"))):
        p = SPEC.child("rules").index(i)
        rule = as_dict(rule)
        host = rule.get("host")
        if host:
            errs += dns_subdomain(host[2:] if host.startswith("*.") else host, p.child("host"))
        for j, http_path in enumerate(as_list(as_dict(rule.get("http")).get("paths"))):
            pp = p.child("http", "paths").index(j)
            http_path = as_dict(http_path)
            if not http_path.get("pathType"):
                errs.append(Cause.required(str(pp.child("pathType")),
                                           "pathType must be specified"))
            else:
                errs += supported(http_path["pathType"], pp.child("pathType"), PATH_TYPES)
            if http_path.get("path") and not str(http_path["path"]).startswith("/") and \
                    http_path.get("pathType") != "ImplementationSpecific":
                errs.append(Cause.invalid(str(pp.child("path")), http_path["path"],
                                          "must be an absolute path"))
    return errs


def validate_ingressclass(obj: Obj, old: Obj | None) -> Causes:
    return required(as_dict(obj.get("spec")).get("controller"), SPEC.child("controller"))


def validate_lease(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    errs = positive(spec.get("leaseDurationSeconds"), SPEC.child("leaseDurationSeconds"))
    errs += non_negative(spec.get("leaseTransitions"), SPEC.child("leaseTransitions"))
    return errs


def validate_endpointslice(obj: Obj, old: Obj | None) -> Causes:
    errs = supported(obj.get("addressType"), Path("addressType"), ("FQDN", "IPv4", "IPv6"))
    for i, endpoint in enumerate(as_list(obj.get("endpoints"))):
        addresses = as_list(as_dict(endpoint).get("addresses"))
        p = Path("endpoints").index(i).child("addresses")
        if not addresses:
            errs.append(Cause.required(str(p), "must contain at least 1 address"))
        elif len(addresses) > 100:
            errs.append(Cause.too_many(str(p), len(addresses), 100))
    for i, port in enumerate(as_list(obj.get("ports"))):
        port = as_dict(port)
        p = Path("ports").index(i)
        if port.get("port") is not None:
            errs += port_number(port["port"], p.child("port"))
        errs += supported(port.get("protocol"), p.child("protocol"), PROTOCOLS,
                          required_if_empty=False)
    return errs


def validate_hpa(obj: Obj, old: Obj | None) -> Causes:
    spec = as_dict(obj.get("spec"))
    ref = as_dict(spec.get("scaleTargetRef"))
    errs: Causes = []
    if not ref.get("kind"):
        errs.append(Cause.required(str(SPEC.child("scaleTargetRef", "kind"))))
    if not ref.get("name"):
        errs.append(Cause.required(str(SPEC.child("scaleTargetRef", "name"))))
    max_replicas = spec.get("maxReplicas")
    if not isinstance(max_replicas, int) or max_replicas < 1:
        errs.append(Cause.invalid(str(SPEC.child("maxReplicas")), max_replicas,
                                  "must be greater than 0"))
    min_replicas = spec.get("minReplicas")
    if isinstance(min_replicas, int) and isinstance(max_replicas, int) and \
            min_replicas > max_replicas:
        errs.append(Cause.invalid(str(SPEC.child("minReplicas")), min_replicas,
                                  "must be less than or equal to maxReplicas"))
    return errs
