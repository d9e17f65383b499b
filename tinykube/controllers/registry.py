"""The registry of controllers, keyed by the names of kube-controller-manager's --controllers.

``CONTROLLERS`` maps each upstream name (``replicaset-controller``, ...) to a factory
taking a ``ControllerContext``. The short names older releases used (``replicaset``,
``garbagecollector``, ...) are accepted as aliases, as upstream still does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from tinykube.controllers.cronjob import new_cronjob_controller
from tinykube.controllers.daemonset import new_daemonset_controller
from tinykube.controllers.deployment import new_deployment_controller
from tinykube.controllers.disruption import new_disruption_controller
from tinykube.controllers.endpoints import new_endpoints_controller
from tinykube.controllers.endpointslice import new_endpointslice_controller
from tinykube.controllers.endpointslicemirroring import new_endpointslice_mirroring_controller
from tinykube.controllers.ephemeral import new_ephemeral_volume_controller
from tinykube.controllers.garbagecollector import new_garbage_collector
from tinykube.controllers.job import new_job_controller
from tinykube.controllers.namespace import new_namespace_controller
from tinykube.controllers.nodeipam import new_node_ipam_controller
from tinykube.controllers.nodelifecycle import new_node_lifecycle_controller
from tinykube.controllers.persistentvolume import new_persistentvolume_controller
from tinykube.controllers.podgc import new_podgc_controller
from tinykube.controllers.replicaset import (new_replicaset_controller,
                                             new_replicationcontroller_controller)
from tinykube.controllers.resourcequota import new_resourcequota_controller
from tinykube.controllers.rootcacertpublisher import new_root_ca_cert_publisher
from tinykube.controllers.statefulset import new_statefulset_controller
from tinykube.controllers.serviceaccount import new_serviceaccount_controller
from tinykube.controllers.tainteviction import new_taint_eviction_controller
from tinykube.controllers.ttlafterfinished import new_ttl_after_finished_controller

Factory = Callable[[Any], Any]

CONTROLLERS: dict[str, Factory] = {
    "replicaset-controller": new_replicaset_controller,
    "replicationcontroller-controller": new_replicationcontroller_controller,
    "deployment-controller": new_deployment_controller,
    "garbage-collector-controller": new_garbage_collector,
    "namespace-controller": new_namespace_controller,
    "serviceaccount-controller": new_serviceaccount_controller,
    "root-ca-certificate-publisher-controller": new_root_ca_cert_publisher,
    "endpoints-controller": new_endpoints_controller,
    "endpointslice-controller": new_endpointslice_controller,
    "endpointslice-mirroring-controller": new_endpointslice_mirroring_controller,
    "node-lifecycle-controller": new_node_lifecycle_controller,
    "taint-eviction-controller": new_taint_eviction_controller,
    "node-ipam-controller": new_node_ipam_controller,
    "pod-garbage-collector-controller": new_podgc_controller,
    "job-controller": new_job_controller,
    "ttl-after-finished-controller": new_ttl_after_finished_controller,
    "cronjob-controller": new_cronjob_controller,
    "daemonset-controller": new_daemonset_controller,
    "statefulset-controller": new_statefulset_controller,
    "resourcequota-controller": new_resourcequota_controller,
    "persistentvolume-binder-controller": new_persistentvolume_controller,
    "disruption-controller": new_disruption_controller,
    "ephemeral-volume-controller": new_ephemeral_volume_controller,
}

ALIASES: dict[str, str] = {
    "replicaset": "replicaset-controller",
    "replicationcontroller": "replicationcontroller-controller",
    "deployment": "deployment-controller",
    "garbagecollector": "garbage-collector-controller",
    "namespace": "namespace-controller",
    "serviceaccount": "serviceaccount-controller",
    "root-ca-cert-publisher": "root-ca-certificate-publisher-controller",
    "endpoint": "endpoints-controller",
    "endpointslice": "endpointslice-controller",
    "endpointslicemirroring": "endpointslice-mirroring-controller",
    "nodelifecycle": "node-lifecycle-controller",
    "nodeipam": "node-ipam-controller",
    "podgc": "pod-garbage-collector-controller",
    "job": "job-controller",
    "cronjob": "cronjob-controller",
    "daemonset": "daemonset-controller",
    "statefulset": "statefulset-controller",
    "resourcequota": "resourcequota-controller",
    "persistentvolume-binder": "persistentvolume-binder-controller",
    "ttl-after-finished": "ttl-after-finished-controller",
    "taint-eviction": "taint-eviction-controller",
    "disruption": "disruption-controller",
    "ephemeral-volume": "ephemeral-volume-controller",
}

# Controllers off unless named explicitly (upstream keeps a few such).
DISABLED_BY_DEFAULT: set[str] = set()


def resolve(spec: list[str], registry: Mapping[str, Factory],
            aliases: Mapping[str, str] | None = None,
            disabled_by_default: Collection[str] = ()) -> dict[str, Factory]:
    """Resolve a --controllers list against ``registry``: ``*`` all defaults, ``foo``
    enables, ``-foo`` disables (names or their ``aliases``); the result keeps the
    registry's order. Both controller managers parse the flag this way.

    Raises ValueError naming the first unknown controller, as upstream rejects them.
    """
    aliases = aliases or {}
    enabled: set[str] = set()
    disabled: set[str] = set()
    star = False
    for raw in spec:
        item = raw.strip()
        if not item:
            continue
        if item == "*":
            star = True
            continue
        negate = item.startswith("-")
        name = item[1:] if negate else item
        name = aliases.get(name, name)
        if name not in registry:
            raise ValueError(f'"{item}" is not in the list of known controllers')
        (disabled if negate else enabled).add(name)
    chosen = enabled | ({n for n in registry if n not in disabled_by_default} if star
                        else set())
    return {name: registry[name] for name in registry
            if name in chosen and name not in disabled}


def enabled_controllers(spec: list[str]) -> dict[str, Factory]:
    """kube-controller-manager's --controllers."""
    return resolve(spec, CONTROLLERS, ALIASES, DISABLED_BY_DEFAULT)
