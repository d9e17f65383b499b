"""Defaulting, as upstream's generated defaulters (pkg/apis/*/v1/defaults.go).

``apply_defaults(info, obj)`` fills in every field upstream's defaulters fill in when an
object is created or updated, in place, so ``kubectl get -o yaml`` shows the same object a
real cluster would. Pod templates embedded in workloads get the pod spec defaults too.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from tinykube.api import decoding
from tinykube.api.kinds import ResourceInfo
from tinykube.api.quantity import canonicalize, format_quantity

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_MODE = 0o644  # 420, the mode of secret/configMap/downwardAPI/projected files


def _sub(parent: Obj, key: str) -> Obj:
    """``parent[key]`` as a dict, created when missing or null. A value of the wrong type
    is kept for validation to report; defaults then go to a detached dict."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    elif not isinstance(value, dict):
        return {}
    return value


def _set(obj: Obj, key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


# --- quantities ------------------------------------------------------------------------


def canonical_quantities(resources: Any) -> None:
    """Rewrite a ``{name: quantity}`` map in upstream's canonical form, in place
    (``1000m`` -> ``1``, ``1024Mi`` -> ``1Gi``, numbers -> strings), as a decode/encode
    round trip through Go's resource.Quantity does. Invalid values stay for validation."""
    if not isinstance(resources, dict):
        return
    for name, value in resources.items():
        try:
            if isinstance(value, str):
                resources[name] = canonicalize(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                resources[name] = format_quantity(value, "DecimalSI")
        except ValueError:
            continue


def _canonical_sections(obj: Any, *sections: str) -> None:
    if isinstance(obj, dict):
        for section in sections:
            canonical_quantities(obj.get(section))


# --- containers and pod specs ----------------------------------------------------------


def image_pull_policy(image: str) -> str:
    """Always for ``:latest`` or untagged images, IfNotPresent otherwise (digests included)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _set(probe, "timeoutSeconds", 1)
    _set(probe, "periodSeconds", 10)
    _set(probe, "successThreshold", 1)
    _set(probe, "failureThreshold", 3)
    _default_handler(probe)


def _default_handler(handler: Obj) -> None:
    http = handler.get("httpGet")
    if isinstance(http, dict):
        _set(http, "path", "/")
        _set(http, "scheme", "HTTP")
    grpc = handler.get("grpc")
    if isinstance(grpc, dict):
        _set(grpc, "service", "")


def _default_container(c: Any) -> None:
    if not isinstance(c, dict):
        return
    image = c.get("image")
    if isinstance(image, str) and image and not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(image)
    _canonical_sections(c.get("resources"), "limits", "requests")
    _set(c, "terminationMessagePath", "/dev/termination-log")
    _set(c, "terminationMessagePolicy", "File")
    for port in c.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
    _sub(c, "resources")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(probe))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _default_handler(lifecycle[hook])
    for env in c.get("env") or []:
        field_ref = ((env or {}).get("valueFrom") or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            _set(field_ref, "apiVersion", "v1")


def _default_volume(volume: Any) -> None:
    if not isinstance(volume, dict):
        return
    sources = [k for k in volume if k != "name"]
    if not sources:
        volume["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = volume.get(key)
        if isinstance(source, dict):
            _set(source, "defaultMode", DEFAULT_MODE)
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        _set(host_path, "type", "")
    projected = volume.get("projected")
    if isinstance(projected, dict):
        for src in projected.get("sources") or []:
            token = (src or {}).get("serviceAccountToken")
            if isinstance(token, dict):
                _set(token, "expirationSeconds", 3600)
    for item in ((volume.get("downwardAPI") or {}).get("items") or []):
        field_ref = (item or {}).get("fieldRef")
        if isinstance(field_ref, dict):
            _set(field_ref, "apiVersion", "v1")


def _requests_from_limits(c: Any) -> None:
    """A limit without a request makes the request (SetDefaults_Pod: pods, not templates)."""
    if not isinstance(c, dict):
        return
    resources = _sub(c, "resources")
    limits = resources.get("limits")
    if isinstance(limits, dict) and limits:
        requests = _sub(resources, "requests")
        for name, value in limits.items():
            requests.setdefault(name, value)


def default_pod_spec(spec: Any, *, template: bool = False) -> None:
    """SetDefaults_PodSpec plus containers and volumes.

    What upstream does in SetDefaults_Pod (requests from limits, enableServiceLinks, host
    network ports) applies to pods only, never to templates. Priority and the default
    tolerations are admission's job (the Priority and DefaultTolerationSeconds plugins).
    """
    if not isinstance(spec, dict):
        return
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "restartPolicy", "Always")
    _set(spec, "terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_PERIOD)
    _set(spec, "schedulerName", "default-scheduler")
    _set(spec, "securityContext", {})
    if spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            _default_container(c)
    for volume in spec.get("volumes") or []:
        _default_volume(volume)
    canonical_quantities(spec.get("overhead"))
    if not template:
        _set(spec, "enableServiceLinks", True)
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or []:
                _requests_from_limits(c)
                if spec.get("hostNetwork") and isinstance(c, dict):
                    for port in c.get("ports") or []:
                        if isinstance(port, dict) and port.get("hostPort") is None:
                            port["hostPort"] = port.get("containerPort")


def _default_template(template: Any) -> None:
    if isinstance(template, dict):
        default_pod_spec(template.get("spec"), template=True)


def _default_pod(pod: Obj) -> None:
    default_pod_spec(_sub(pod, "spec"))


# --- workloads -------------------------------------------------------------------------


def _default_deployment(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "replicas", 1)
    strategy = _sub(spec, "strategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        _set(rolling, "maxUnavailable", "25%")
        _set(rolling, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)
    _default_template(spec.get("template"))


def _default_replicaset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "replicas", 1)
    _default_template(spec.get("template"))


def _default_replication_controller(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "replicas", 1)
    template = spec.get("template")
    template_labels = ((template or {}).get("metadata") or {}).get("labels") or {}
    if template_labels:
        if not spec.get("selector"):
            spec["selector"] = dict(template_labels)
        md = _sub(obj, "metadata")
        if not md.get("labels"):
            md["labels"] = dict(template_labels)
    _default_template(template)


def _default_daemonset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    strategy = _sub(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        _set(rolling, "maxUnavailable", 1)
        _set(rolling, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)
    _default_template(spec.get("template"))


def _default_pvc_spec(spec: Any) -> None:
    if isinstance(spec, dict):
        _set(spec, "volumeMode", "Filesystem")
        _canonical_sections(spec.get("resources"), "limits", "requests")


def _default_statefulset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "replicas", 1)
    _set(spec, "podManagementPolicy", "OrderedReady")
    strategy = _sub(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_sub(strategy, "rollingUpdate"), "partition", 0)
    _set(spec, "revisionHistoryLimit", 10)
    retention = _sub(spec, "persistentVolumeClaimRetentionPolicy")
    _set(retention, "whenDeleted", "Retain")
    _set(retention, "whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            _default_pvc_spec(_sub(claim, "spec"))
            _set(_sub(claim, "status"), "phase", "Pending")
    _default_template(spec.get("template"))


JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"


def generate_job_selector(job: Obj) -> None:
    """The Job strategy's generated selector and template labels (needs ``metadata.uid``).

    Skipped when ``spec.manualSelector`` is true or the uid is not assigned yet.
    """
    md = job.get("metadata") or {}
    spec = _sub(job, "spec")
    uid, name = md.get("uid"), md.get("name")
    if spec.get("manualSelector") or not uid:
        return
    template = _sub(spec, "template")
    labels = _sub(_sub(template, "metadata"), "labels")
    labels.setdefault(CONTROLLER_UID_LABEL, uid)
    labels.setdefault(JOB_NAME_LABEL, name or "")
    labels.setdefault(LEGACY_CONTROLLER_UID_LABEL, uid)
    labels.setdefault(LEGACY_JOB_NAME_LABEL, name or "")
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {CONTROLLER_UID_LABEL: uid}}


def _default_job_spec(spec: Obj) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    _set(spec, "parallelism", 1)
    _set(spec, "backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None
         else 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy",
         "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    _default_template(spec.get("template"))


def _default_job(obj: Obj) -> None:
    _default_job_spec(_sub(obj, "spec"))
    generate_job_selector(obj)


def _default_cronjob(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)
    job_template = _sub(spec, "jobTemplate")
    _default_job_spec(_sub(job_template, "spec"))


def _default_pod_template(obj: Obj) -> None:
    _default_template(obj.get("template"))


def _default_hpa(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]


# --- core ------------------------------------------------------------------------------


def _default_service(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        client_ip = _sub(_sub(spec, "sessionAffinityConfig"), "clientIP")
        _set(client_ip, "timeoutSeconds", 10800)
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if port.get("targetPort") in (None, 0, ""):
                port["targetPort"] = port.get("port")
    svc_type = spec["type"]
    if svc_type != "ExternalName":
        _set(spec, "internalTrafficPolicy", "Cluster")
        _set(spec, "ipFamilyPolicy", "SingleStack")
        _set(spec, "ipFamilies", ["IPv4"])
    if svc_type in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if svc_type == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)
    _sub(obj, "status").setdefault("loadBalancer", {})


def _default_namespace(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    finalizers = spec.get("finalizers")
    if not finalizers:
        spec["finalizers"] = ["kubernetes"]
    _set(_sub(obj, "status"), "phase", "Active")
    md = _sub(obj, "metadata")
    if md.get("name"):
        _sub(md, "labels").setdefault("kubernetes.io/metadata.name", md["name"])


def _default_secret(obj: Obj) -> None:
    """Opaque by default; ``stringData`` is write-only: merged into ``data`` (base64, it
    wins over the same key in data) and dropped, as upstream's conversion does."""
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.get("stringData")
    if isinstance(string_data, dict):
        data = _sub(obj, "data")
        for key, value in string_data.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()
        del obj["stringData"]


def _default_pvc(obj: Obj) -> None:
    _default_pvc_spec(_sub(obj, "spec"))
    _set(_sub(obj, "status"), "phase", "Pending")


def _default_pv(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    canonical_quantities(spec.get("capacity"))
    _set(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set(spec, "volumeMode", "Filesystem")
    _set(_sub(obj, "status"), "phase", "Pending")


def _default_node(obj: Obj) -> None:
    _canonical_sections(obj.get("status"), "capacity", "allocatable")
    status = obj.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])


def _default_endpoints(obj: Obj) -> None:
    for subset in obj.get("subsets") or []:
        for port in (subset or {}).get("ports") or []:
            if isinstance(port, dict):
                _set(port, "protocol", "TCP")


def _default_endpointslice(obj: Obj) -> None:
    for port in obj.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "name", "")
            _set(port, "protocol", "TCP")


def _default_resourcequota(obj: Obj) -> None:
    _canonical_sections(obj.get("spec"), "hard")
    _canonical_sections(obj.get("status"), "hard", "used")


def _default_limitrange(obj: Obj) -> None:
    for limit in (obj.get("spec") or {}).get("limits") or []:
        _canonical_sections(limit, "max", "min", "default", "defaultRequest",
                            "maxLimitRequestRatio")
        if not isinstance(limit, dict) or limit.get("type") != "Container":
            continue
        # A max without a default becomes the default; a default without a request too.
        defaults = limit.get("default") or {}
        for name, value in (limit.get("max") or {}).items():
            defaults.setdefault(name, value)
        if defaults:
            limit["default"] = defaults
            requests = limit.get("defaultRequest") or {}
            for name, value in defaults.items():
                requests.setdefault(name, value)
            limit["defaultRequest"] = requests


def _default_binding_subjects(obj: Obj) -> None:
    for subject in obj.get("subjects") or []:
        if not isinstance(subject, dict):
            continue
        if subject.get("kind") in ("User", "Group"):
            _set(subject, "apiGroup", "rbac.authorization.k8s.io")
        elif subject.get("kind") == "ServiceAccount":
            _set(subject, "apiGroup", "")


def _default_storageclass(obj: Obj) -> None:
    _set(obj, "reclaimPolicy", "Delete")
    _set(obj, "volumeBindingMode", "Immediate")


def _default_priorityclass(obj: Obj) -> None:
    _set(obj, "preemptionPolicy", "PreemptLowerPriority")


def _default_networkpolicy(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule or {}).get("ports") or []:
                if isinstance(port, dict):
                    _set(port, "protocol", "TCP")


def _default_ingress(obj: Obj) -> None:
    _sub(obj, "status").setdefault("loadBalancer", {})


_DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("", "Pod"): _default_pod,
    ("", "PodTemplate"): _default_pod_template,
    ("", "ReplicationController"): _default_replication_controller,
    ("", "Service"): _default_service,
    ("", "Namespace"): _default_namespace,
    ("", "Secret"): _default_secret,
    ("", "PersistentVolumeClaim"): _default_pvc,
    ("", "PersistentVolume"): _default_pv,
    ("", "Node"): _default_node,
    ("", "Endpoints"): _default_endpoints,
    ("", "LimitRange"): _default_limitrange,
    ("", "ResourceQuota"): _default_resourcequota,
    ("apps", "Deployment"): _default_deployment,
    ("apps", "ReplicaSet"): _default_replicaset,
    ("apps", "DaemonSet"): _default_daemonset,
    ("apps", "StatefulSet"): _default_statefulset,
    ("batch", "Job"): _default_job,
    ("batch", "CronJob"): _default_cronjob,
    ("autoscaling", "HorizontalPodAutoscaler"): _default_hpa,
    ("discovery.k8s.io", "EndpointSlice"): _default_endpointslice,
    ("rbac.authorization.k8s.io", "RoleBinding"): _default_binding_subjects,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _default_binding_subjects,
    ("storage.k8s.io", "StorageClass"): _default_storageclass,
    ("scheduling.k8s.io", "PriorityClass"): _default_priorityclass,
    ("networking.k8s.io", "NetworkPolicy"): _default_networkpolicy,
    ("networking.k8s.io", "Ingress"): _default_ingress,
}


def apply_defaults(info: ResourceInfo, obj: Obj) -> Obj:
    """Default ``obj`` (of resource ``info``) in place and return it.

    Idempotent. An object with values of the wrong JSON type is left as it is: decoding
    (``decoding.decode_error``) or validation reports it.
    """
    if not isinstance(obj, dict):
        return obj
    defaulter = _DEFAULTERS.get((info.group, info.kind))
    if defaulter is not None and not decoding.type_problems(info, obj):
        defaulter(obj)
    return obj
