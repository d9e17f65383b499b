"""The controller manager's configuration, with kube-controller-manager's defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ControllerManagerConfig:
    """Flags of ``tinykube controller-manager`` (upstream names, seconds for durations)."""

    kubeconfig: str | None = None
    client: Any = None  # a ready tinykube.client.rest.Client instead of a kubeconfig
    controllers: list[str] = field(default_factory=lambda: ["*"])
    leader_elect: bool = True
    leader_elect_lease_duration: float = 15.0
    leader_elect_renew_deadline: float = 10.0
    leader_elect_retry_period: float = 2.0
    leader_elect_resource_namespace: str = "kube-system"
    leader_elect_resource_name: str = "kube-controller-manager"
    identity: str | None = None
    bind_address: str = "127.0.0.1"
    secure_port: int = 10257  # 0 picks a free port; None disables the server
    informer_sync_timeout: float = 30.0  # start the controllers without a stuck informer
    # workload controllers
    concurrent_replicaset_syncs: int = 5
    concurrent_rc_syncs: int = 5
    concurrent_deployment_syncs: int = 5
    concurrent_gc_syncs: int = 20
    concurrent_namespace_syncs: int = 10
    concurrent_endpoint_syncs: int = 5
    concurrent_job_syncs: int = 5
    concurrent_statefulset_syncs: int = 5
    concurrent_daemonset_syncs: int = 2
    # job: first delay before replacing a failed pod (doubles per failure, max 6 min)
    job_pod_failure_backoff: float = 10.0
    # node lifecycle
    node_monitor_grace_period: float = 40.0
    node_startup_grace_period: float = 60.0
    node_monitor_period: float = 5.0
    # node ipam
    allocate_node_cidrs: bool = True
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask_size: int = 24
    # pod gc
    terminated_pod_gc_threshold: int = 12500
    # root-ca-cert-publisher: the cluster CA published as kube-root-ca.crt
    root_ca_file: str | None = None
    root_ca_data: bytes | None = None  # filled from root_ca_file or the kubeconfig's CA
    # persistentvolume-binder's hostPath provisioner
    pv_host_path_dir: str = "/var/lib/tinykube/pv"
    # resourcequota full resync
    resource_quota_sync_period: float = 300.0
