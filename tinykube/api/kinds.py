"""The kinds registry: every built-in resource tinykube serves, as upstream names it.

One table drives discovery, URL routing, storage keys, the client and ``kubectl get all``.
Facts (group, version, plural, short names, categories, subresources) follow the
Kubernetes v1.32 API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list")


@dataclass(frozen=True)
class ResourceInfo:
    """One REST resource: where it lives in the API and in the store."""

    group: str
    version: str
    kind: str
    resource: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # The store prefix name when it differs from the resource (upstream keeps a few
    # historical names, e.g. services are /registry/services/specs/...).
    storage_name: str = ""
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def storage_prefix(self, namespace: str | None = None) -> str:
        """``/registry/<resource>/[<namespace>/]`` as kube-apiserver lays out etcd."""
        base = f"/registry/{self.storage_name or self.resource}/"
        if self.namespaced and namespace:
            return f"{base}{namespace}/"
        return base

    def storage_key(self, namespace: str | None, name: str) -> str:
        return self.storage_prefix(namespace) + name


def _r(group: str, version: str, kind: str, resource: str, **kw) -> ResourceInfo:
    return ResourceInfo(group, version, kind, resource, **kw)


_ALL = ("all",)

RESOURCES: tuple[ResourceInfo, ...] = (
    # core/v1
    _r("", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
       subresources=("status", "finalize")),
    _r("", "v1", "Pod", "pods", short_names=("po",), categories=_ALL,
       subresources=("status", "binding", "log", "exec", "attach", "eviction", "portforward",
                     "ephemeralcontainers")),
    _r("", "v1", "Service", "services", short_names=("svc",), categories=_ALL,
       subresources=("status", "proxy"), storage_name="services/specs"),
    _r("", "v1", "Endpoints", "endpoints", short_names=("ep",), storage_name="services/endpoints",
       singular="endpoints"),
    _r("", "v1", "Node", "nodes", namespaced=False, short_names=("no",),
       subresources=("status", "proxy"), storage_name="minions"),
    _r("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
       subresources=("token",)),
    _r("", "v1", "Event", "events", short_names=("ev",)),
    _r("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short_names=("pv",),
       subresources=("status",)),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",),
       subresources=("status",)),
    _r("", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",),
       subresources=("status",)),
    _r("", "v1", "LimitRange", "limitranges", short_names=("limits",)),
    _r("", "v1", "ComponentStatus", "componentstatuses", namespaced=False, short_names=("cs",),
       verbs=READ_VERBS),
    _r("", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",),
       categories=_ALL, subresources=("status", "scale"), storage_name="controllers"),
    _r("", "v1", "PodTemplate", "podtemplates"),
    # apps/v1
    _r("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=_ALL,
       subresources=("status", "scale")),
    _r("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=_ALL,
       subresources=("status", "scale")),
    _r("apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=_ALL,
       subresources=("status",)),
    _r("apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=_ALL,
       subresources=("status", "scale")),
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    # batch/v1
    _r("batch", "v1", "Job", "jobs", categories=_ALL, subresources=("status",)),
    _r("batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=_ALL,
       subresources=("status",)),
    # autoscaling
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
       short_names=("hpa",), categories=_ALL, subresources=("status",)),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # events.k8s.io/v1 (same storage as core events)
    _r("events.k8s.io", "v1", "Event", "events", short_names=("ev",)),
    # rbac.authorization.k8s.io/v1
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
       namespaced=False),
    # storage.k8s.io/v1
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False,
       short_names=("sc",)),
    # policy/v1
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",),
       subresources=("status",)),
    # scheduling.k8s.io/v1
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False,
       short_names=("pc",)),
    # networking.k8s.io/v1
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short_names=("ing",),
       subresources=("status",)),
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    # authentication / authorization reviews (create only, never stored)
    _r("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
       namespaced=False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews",
       namespaced=False, verbs=("create",)),
    _r("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
       namespaced=False, verbs=("create",)),
    _r("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False,
       verbs=("create",)),
    _r("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews",
       namespaced=False, verbs=("create",)),
    # metrics.k8s.io/v1beta1 (kubectl top): read off the kubelets' summary API, never stored
    _r("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes", namespaced=False, verbs=READ_VERBS),
    _r("metrics.k8s.io", "v1beta1", "PodMetrics", "pods", verbs=READ_VERBS),
)

# Groups in the order discovery lists them (core first, as upstream).
GROUP_ORDER: tuple[str, ...] = tuple(dict.fromkeys(r.group for r in RESOURCES))

_BY_GVR: dict[tuple[str, str, str], ResourceInfo] = {
    (r.group, r.version, r.resource): r for r in RESOURCES
}
_BY_GVK: dict[tuple[str, str, str], ResourceInfo] = {}
for _info in RESOURCES:
    _BY_GVK.setdefault((_info.group, _info.version, _info.kind), _info)


def lookup(group: str, version: str, resource: str) -> ResourceInfo | None:
    """The resource served at ``/apis/<group>/<version>/<resource>`` (``""`` = core)."""
    return _BY_GVR.get((group, version, resource))


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource for an object's ``apiVersion`` and ``kind``."""
    group, _, version = api_version.rpartition("/")
    return _BY_GVK.get((group, version, kind))


def resolve(name: str, group: str | None = None) -> ResourceInfo:
    """Find a resource by plural, singular, kind or short name (as kubectl does).

    Raises KeyError when nothing matches.
    """
    lowered = name.lower()
    for info in RESOURCES:
        if group is not None and info.group != group:
            continue
        if lowered in (info.resource, info.singular_name, info.kind.lower(), *info.short_names):
            return info
    raise KeyError(name)


def group_versions() -> dict[str, list[str]]:
    """Each served group with its versions, preferred first."""
    out: dict[str, list[str]] = {}
    for info in RESOURCES:
        versions = out.setdefault(info.group, [])
        if info.version not in versions:
            versions.append(info.version)
    return out


def resources_in(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in RESOURCES if r.group == group and r.version == version]
