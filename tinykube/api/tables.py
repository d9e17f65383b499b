"""Server-side printing: ``meta.k8s.io/v1`` Tables for ``kubectl get``.

Columns, cell values and their formatting follow upstream's printers
(pkg/printers/internalversion/printers.go): the same names, types, priorities (1 = shown
only with ``-o wide``; kubectl hides them itself, so the server sends every column) and
the same derived values (a pod's STATUS, RESTARTS ``3 (5s ago)``, a node's roles, ...).
Kinds without a printer get upstream's default columns, Name and Created At.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from tinykube.api import printers, schema
from tinykube.api.kinds import ResourceInfo
# Formatting helpers other components reuse for human-readable output.
from tinykube.api.printers import (format_label_selector, format_labels,  # noqa: F401
                                   human_duration, node_roles, node_status_text, since)

Obj = dict[str, Any]
Cell = Any

_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_CORE = "io.k8s.api.core.v1."


# --- column definitions ----------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _doc(definition: str, field: str) -> str:
    prop = (schema.definitions().get(definition) or {}).get("properties", {}).get(field) or {}
    return prop.get("description") or ""


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    description: str | tuple[str, str] = ""
    priority: int = 0
    format: str = ""

    def definition(self) -> dict[str, Any]:
        desc = self.description
        if isinstance(desc, tuple):
            desc = _doc(*desc)
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": desc, "priority": self.priority}


NAME = Column("Name", format="name", description=(_META, "name"))
AGE = Column("Age", description=(_META, "creationTimestamp"))
CONTAINERS = Column("Containers", priority=1, description="Names of each container in the "
                                                          "template.")
IMAGES = Column("Images", priority=1, description="Images referenced by each container in "
                                                  "the template.")


def _c(name: str, type_: str = "string", doc: str | tuple[str, str] = "",
       priority: int = 0) -> Column:
    return Column(name, type_, doc, priority)


Printer = Callable[[Obj, float], list[Cell]]


@dataclass(frozen=True)
class TableSpec:
    columns: tuple[Column, ...]
    cells: Printer
    conditions: Callable[[Obj], list[dict[str, str]]] | None = None


_WORKLOAD_WIDE = (CONTAINERS, IMAGES)

_METRICS_COLUMNS = (NAME, _c("CPU", doc="CPU usage"), _c("Memory", doc="Memory usage"),
                    _c("Window", doc="Time window over which the usage was measured"))
_RS_COLUMNS = (NAME, _c("Desired", "integer", ("io.k8s.api.apps.v1.ReplicaSetSpec", "replicas")),
               _c("Current", "integer", ("io.k8s.api.apps.v1.ReplicaSetStatus", "replicas")),
               _c("Ready", "integer", ("io.k8s.api.apps.v1.ReplicaSetStatus", "readyReplicas")),
               AGE, *_WORKLOAD_WIDE,
               _c("Selector", doc=("io.k8s.api.apps.v1.ReplicaSetSpec", "selector"), priority=1))

_BINDING_COLUMNS = (NAME, _c("Role", doc=("io.k8s.api.rbac.v1.RoleBinding", "roleRef")), AGE,
                    _c("Users", doc="Users in the roleBinding", priority=1),
                    _c("Groups", doc="Groups in the roleBinding", priority=1),
                    _c("ServiceAccounts", doc="ServiceAccounts in the roleBinding", priority=1))

_SPECS: dict[tuple[str, str], TableSpec] = {
    ("", "Pod"): TableSpec((
        NAME,
        _c("Ready", doc="The aggregate readiness state of this pod for accepting traffic."),
        _c("Status", doc="The aggregate status of the containers in this pod."),
        _c("Restarts", doc="The number of times the containers in this pod have been restarted "
                           "and when the last container in this pod has restarted."),
        AGE,
        _c("IP", doc=(_CORE + "PodStatus", "podIP"), priority=1),
        _c("Node", doc=(_CORE + "PodSpec", "nodeName"), priority=1),
        _c("Nominated Node", doc=(_CORE + "PodStatus", "nominatedNodeName"), priority=1),
        _c("Readiness Gates", doc=(_CORE + "PodSpec", "readinessGates"), priority=1),
    ), printers.pod_cells, printers.pod_row_conditions),
    ("", "PodTemplate"): TableSpec((
        NAME, _c("Containers", doc="Names of each container in the template."),
        _c("Images", doc="Images referenced by each container in the template."),
        _c("Pod Labels", doc="The labels for the pod template.")), printers.podtemplate_cells),
    ("", "ReplicationController"): TableSpec((
        NAME, _c("Desired", "integer", (_CORE + "ReplicationControllerSpec", "replicas")),
        _c("Current", "integer", (_CORE + "ReplicationControllerStatus", "replicas")),
        _c("Ready", "integer", (_CORE + "ReplicationControllerStatus", "readyReplicas")),
        AGE, *_WORKLOAD_WIDE,
        _c("Selector", doc=(_CORE + "ReplicationControllerSpec", "selector"), priority=1),
    ), printers.replicas_cells),
    ("", "Service"): TableSpec((
        NAME, _c("Type", doc=(_CORE + "ServiceSpec", "type")),
        _c("Cluster-IP", doc=(_CORE + "ServiceSpec", "clusterIP")),
        _c("External-IP", doc=(_CORE + "ServiceSpec", "externalIPs")),
        _c("Port(s)", doc=(_CORE + "ServiceSpec", "ports")), AGE,
        _c("Selector", doc=(_CORE + "ServiceSpec", "selector"), priority=1),
    ), printers.service_cells),
    ("", "Endpoints"): TableSpec((
        NAME, _c("Endpoints", doc=(_CORE + "Endpoints", "subsets")), AGE), printers.endpoints_cells),
    ("", "Node"): TableSpec((
        NAME, _c("Status", doc="The status of the node"),
        _c("Roles", doc="The roles of the node"), AGE,
        _c("Version", doc=(_CORE + "NodeSystemInfo", "kubeletVersion")),
        _c("Internal-IP", doc=(_CORE + "NodeStatus", "addresses"), priority=1),
        _c("External-IP", doc=(_CORE + "NodeStatus", "addresses"), priority=1),
        _c("OS-Image", doc=(_CORE + "NodeSystemInfo", "osImage"), priority=1),
        _c("Kernel-Version", doc=(_CORE + "NodeSystemInfo", "kernelVersion"), priority=1),
        _c("Container-Runtime", doc=(_CORE + "NodeSystemInfo", "containerRuntimeVersion"),
           priority=1),
    ), printers.node_cells),
    ("", "Event"): TableSpec((
        _c("Last Seen", doc=(_CORE + "Event", "lastTimestamp")),
        _c("Type", doc=(_CORE + "Event", "type")),
        _c("Reason", doc=(_CORE + "Event", "reason")),
        _c("Object", doc=(_CORE + "Event", "involvedObject")),
        _c("Subobject", doc=(_CORE + "ObjectReference", "fieldPath"), priority=1),
        _c("Source", doc=(_CORE + "Event", "source"), priority=1),
        _c("Message", doc=(_CORE + "Event", "message")),
        _c("First Seen", doc=(_CORE + "Event", "firstTimestamp"), priority=1),
        _c("Count", doc=(_CORE + "Event", "count"), priority=1),
        Column("Name", priority=1, format="name", description=(_META, "name")),
    ), printers.event_cells),
    ("", "Namespace"): TableSpec((
        NAME, _c("Status", doc="The status of the namespace"), AGE), printers.namespace_cells),
    ("", "Secret"): TableSpec((
        NAME, _c("Type", doc=(_CORE + "Secret", "type")),
        _c("Data", doc=(_CORE + "Secret", "data")), AGE), printers.secret_cells),
    ("", "ConfigMap"): TableSpec((
        NAME, _c("Data", doc=(_CORE + "ConfigMap", "data")), AGE), printers.configmap_cells),
    ("", "ServiceAccount"): TableSpec((
        NAME, _c("Secrets", doc=(_CORE + "ServiceAccount", "secrets")), AGE),
        printers.serviceaccount_cells),
    ("", "PersistentVolume"): TableSpec((
        NAME, _c("Capacity", doc=(_CORE + "PersistentVolumeSpec", "capacity")),
        _c("Access Modes", doc=(_CORE + "PersistentVolumeSpec", "accessModes")),
        _c("Reclaim Policy", doc=(_CORE + "PersistentVolumeSpec",
                                  "persistentVolumeReclaimPolicy")),
        _c("Status", doc=(_CORE + "PersistentVolumeStatus", "phase")),
        _c("Claim", doc=(_CORE + "PersistentVolumeSpec", "claimRef")),
        _c("StorageClass", doc="StorageClass of the pv"),
        _c("VolumeAttributesClass", doc="VolumeAttributesClass of the pv"),
        _c("Reason", doc=(_CORE + "PersistentVolumeStatus", "reason")), AGE,
        _c("VolumeMode", doc=(_CORE + "PersistentVolumeSpec", "volumeMode"), priority=1),
    ), printers.pv_cells),
    ("", "PersistentVolumeClaim"): TableSpec((
        NAME, _c("Status", doc=(_CORE + "PersistentVolumeClaimStatus", "phase")),
        _c("Volume", doc=(_CORE + "PersistentVolumeClaimSpec", "volumeName")),
        _c("Capacity", doc=(_CORE + "PersistentVolumeClaimStatus", "capacity")),
        _c("Access Modes", doc=(_CORE + "PersistentVolumeClaimStatus", "accessModes")),
        _c("StorageClass", doc="StorageClass of the pvc"),
        _c("VolumeAttributesClass", doc="VolumeAttributesClass of the pvc"), AGE,
        _c("VolumeMode", doc=(_CORE + "PersistentVolumeClaimSpec", "volumeMode"), priority=1),
    ), printers.pvc_cells),
    ("", "ComponentStatus"): TableSpec((
        NAME, _c("Status", doc="Status of the component conditions"),
        _c("Message", doc="Message of the component conditions"),
        _c("Error", doc="Error of the component conditions")), printers.componentstatus_cells),
    ("metrics.k8s.io", "NodeMetrics"): TableSpec(_METRICS_COLUMNS, printers.metrics_cells),
    ("metrics.k8s.io", "PodMetrics"): TableSpec(_METRICS_COLUMNS, printers.metrics_cells),
    ("", "ResourceQuota"): TableSpec((
        NAME, AGE,
        _c("Request", doc="Request represents a minimum amount of cpu/memory that a container "
                          "may consume."),
        _c("Limit", doc="Limits control the maximum amount of cpu/memory that a container may "
                        "use independent of contention on the node."),
    ), printers.resourcequota_cells),
    ("apps", "Deployment"): TableSpec((
        NAME, _c("Ready", doc="Number of the pod with ready state"),
        _c("Up-to-date", doc=("io.k8s.api.apps.v1.DeploymentStatus", "updatedReplicas")),
        _c("Available", doc=("io.k8s.api.apps.v1.DeploymentStatus", "availableReplicas")),
        AGE, *_WORKLOAD_WIDE,
        _c("Selector", doc=("io.k8s.api.apps.v1.DeploymentSpec", "selector"), priority=1),
    ), printers.deployment_cells),
    ("apps", "ReplicaSet"): TableSpec(_RS_COLUMNS, printers.replicas_cells),
    ("apps", "DaemonSet"): TableSpec((
        NAME,
        _c("Desired", "integer", ("io.k8s.api.apps.v1.DaemonSetStatus", "desiredNumberScheduled")),
        _c("Current", "integer", ("io.k8s.api.apps.v1.DaemonSetStatus", "currentNumberScheduled")),
        _c("Ready", "integer", ("io.k8s.api.apps.v1.DaemonSetStatus", "numberReady")),
        _c("Up-to-date", "integer", ("io.k8s.api.apps.v1.DaemonSetStatus",
                                     "updatedNumberScheduled")),
        _c("Available", "integer", ("io.k8s.api.apps.v1.DaemonSetStatus", "numberAvailable")),
        _c("Node Selector", doc=(_CORE + "PodSpec", "nodeSelector")), AGE, *_WORKLOAD_WIDE,
        _c("Selector", doc=("io.k8s.api.apps.v1.DaemonSetSpec", "selector"), priority=1),
    ), printers.daemonset_cells),
    ("apps", "StatefulSet"): TableSpec((
        NAME, _c("Ready", doc="Number of the pod with ready state"), AGE, *_WORKLOAD_WIDE),
        printers.statefulset_cells),
    ("apps", "ControllerRevision"): TableSpec((
        NAME, _c("Controller", doc="Controller of the object"),
        _c("Revision", doc=("io.k8s.api.apps.v1.ControllerRevision", "revision")), AGE),
        printers.controllerrevision_cells),
    ("batch", "Job"): TableSpec((
        NAME, _c("Status", doc="Status of the job."),
        _c("Completions", doc=("io.k8s.api.batch.v1.JobStatus", "succeeded")),
        _c("Duration", doc="Time required to complete the job."), AGE, *_WORKLOAD_WIDE,
        _c("Selector", doc=("io.k8s.api.batch.v1.JobSpec", "selector"), priority=1),
    ), printers.job_cells),
    ("batch", "CronJob"): TableSpec((
        NAME, _c("Schedule", doc=("io.k8s.api.batch.v1.CronJobSpec", "schedule")),
        _c("Timezone", doc=("io.k8s.api.batch.v1.CronJobSpec", "timeZone")),
        _c("Suspend", "boolean", ("io.k8s.api.batch.v1.CronJobSpec", "suspend")),
        _c("Active", "integer", ("io.k8s.api.batch.v1.CronJobStatus", "active")),
        _c("Last Schedule", doc=("io.k8s.api.batch.v1.CronJobStatus", "lastScheduleTime")),
        AGE, *_WORKLOAD_WIDE,
        _c("Selector", doc=("io.k8s.api.batch.v1.JobSpec", "selector"), priority=1),
    ), printers.cronjob_cells),
    ("autoscaling", "HorizontalPodAutoscaler"): TableSpec((
        NAME,
        _c("Reference", doc=("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
                             "scaleTargetRef")),
        _c("Targets", doc=("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec", "metrics")),
        _c("MinPods", doc=("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
                           "minReplicas")),
        _c("MaxPods", doc=("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
                           "maxReplicas")),
        _c("Replicas", doc=("io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
                            "currentReplicas")), AGE), printers.hpa_cells),
    ("coordination.k8s.io", "Lease"): TableSpec((
        NAME, _c("Holder", doc=("io.k8s.api.coordination.v1.LeaseSpec", "holderIdentity")), AGE),
        printers.lease_cells),
    ("discovery.k8s.io", "EndpointSlice"): TableSpec((
        NAME, _c("AddressType", doc=("io.k8s.api.discovery.v1.EndpointSlice", "addressType")),
        _c("Ports", doc=("io.k8s.api.discovery.v1.EndpointSlice", "ports")),
        _c("Endpoints", doc=("io.k8s.api.discovery.v1.EndpointSlice", "endpoints")), AGE),
        printers.endpointslice_cells),
    ("rbac.authorization.k8s.io", "RoleBinding"): TableSpec(_BINDING_COLUMNS, printers.binding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): TableSpec((
        NAME, _c("Role", doc=("io.k8s.api.rbac.v1.ClusterRoleBinding", "roleRef")), AGE,
        _c("Users", doc="Users in the clusterRoleBinding", priority=1),
        _c("Groups", doc="Groups in the clusterRoleBinding", priority=1),
        _c("ServiceAccounts", doc="ServiceAccounts in the clusterRoleBinding", priority=1),
    ), printers.binding_cells),
    ("storage.k8s.io", "StorageClass"): TableSpec((
        NAME, _c("Provisioner", doc=("io.k8s.api.storage.v1.StorageClass", "provisioner")),
        _c("ReclaimPolicy", doc=("io.k8s.api.storage.v1.StorageClass", "reclaimPolicy")),
        _c("VolumeBindingMode", doc=("io.k8s.api.storage.v1.StorageClass",
                                     "volumeBindingMode")),
        _c("AllowVolumeExpansion", doc=("io.k8s.api.storage.v1.StorageClass",
                                        "allowVolumeExpansion")), AGE), printers.storageclass_cells),
    ("policy", "PodDisruptionBudget"): TableSpec((
        NAME, _c("Min Available", doc="The minimum number of pods that must be available."),
        _c("Max Unavailable", doc="The maximum number of pods that may be unavailable."),
        _c("Allowed Disruptions", "integer",
           "Calculated number of pods that may be disrupted at this time."), AGE), printers.pdb_cells),
    ("scheduling.k8s.io", "PriorityClass"): TableSpec((
        NAME, _c("Value", "integer", ("io.k8s.api.scheduling.v1.PriorityClass", "value")),
        _c("Global-Default", "boolean", ("io.k8s.api.scheduling.v1.PriorityClass",
                                         "globalDefault")), AGE,
        _c("PreemptionPolicy", doc=("io.k8s.api.scheduling.v1.PriorityClass",
                                    "preemptionPolicy"))), printers.priorityclass_cells),
    ("networking.k8s.io", "NetworkPolicy"): TableSpec((
        NAME, _c("Pod-Selector", doc=("io.k8s.api.networking.v1.NetworkPolicySpec",
                                      "podSelector")), AGE), printers.networkpolicy_cells),
    ("networking.k8s.io", "Ingress"): TableSpec((
        NAME, _c("Class", doc="The name of the IngressClass resource that should be used for "
                              "additional configuration"),
        _c("Hosts", doc="Hosts that incoming requests are matched against before the ingress "
                        "rule"),
        _c("Address", doc="Address is a list containing ingress points for the load-balancer"),
        _c("Ports", doc="Ports of TLS configurations that open"), AGE), printers.ingress_cells),
    ("networking.k8s.io", "IngressClass"): TableSpec((
        NAME, _c("Controller", doc="Controller that is responsible for handling this class"),
        _c("Parameters", doc="A reference to a resource with additional parameters"), AGE),
        printers.ingressclass_cells),
}
_SPECS[("events.k8s.io", "Event")] = _SPECS[("", "Event")]

DEFAULT_SPEC = TableSpec((
    NAME, Column("Created At", "date", (_META, "creationTimestamp"))), printers.default_cells)


def table_spec(info: ResourceInfo) -> TableSpec:
    return _SPECS.get((info.group, info.kind), DEFAULT_SPEC)


def column_definitions(info: ResourceInfo, wide: bool = True) -> list[dict[str, Any]]:
    return [c.definition() for c in table_spec(info).columns if wide or c.priority == 0]


def _row_object(info: ResourceInfo, obj: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def to_table(info: ResourceInfo, objects: Iterable[Obj], include_object: str = "Metadata",
             wide: bool = True, *, resource_version: str | None = None,
             continue_token: str | None = None, remaining_item_count: int | None = None,
             now: float | None = None) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (items of a list, or one object).

    The API server should keep ``wide=True`` (upstream always sends every column; kubectl
    drops priority-1 columns unless ``-o wide``). ``include_object`` is the
    ``includeObject`` parameter: Metadata (PartialObjectMetadata), Object or None.
    """
    if include_object not in ("Metadata", "Object", "None"):
        raise ValueError(f"includeObject must be one of None, Metadata, Object: "
                         f"{include_object!r}")
    spec = table_spec(info)
    keep = [i for i, c in enumerate(spec.columns) if wide or c.priority == 0]
    at = time.time() if now is None else now
    rows = []
    for obj in objects:
        cells = spec.cells(obj, at)
        row: dict[str, Any] = {"cells": [cells[i] for i in keep]}
        conditions = spec.conditions(obj) if spec.conditions else []
        if conditions:
            row["conditions"] = conditions
        row_obj = _row_object(info, obj, include_object)
        if row_obj is not None:
            row["object"] = row_obj
        rows.append(row)
    list_meta: dict[str, Any] = {}
    if resource_version is not None:
        list_meta["resourceVersion"] = resource_version
    if continue_token:
        list_meta["continue"] = continue_token
    if remaining_item_count is not None:
        list_meta["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [spec.columns[i].definition() for i in keep],
        "rows": rows,
    }
