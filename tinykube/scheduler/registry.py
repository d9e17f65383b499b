"""The in-tree plugin registry (name -> factory) and the default plugin set per extension
point, in upstream's order and with upstream's score weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinykube.scheduler.plugins import (balanced_allocation, default_binder, default_preemption,
                                        image_locality, inter_pod_affinity, node_affinity,
                                        node_name, node_ports, node_resources_fit,
                                        node_unschedulable, pod_topology_spread,
                                        taint_toleration)

Factory = Callable[[dict[str, Any], Any], Any]

REGISTRY: dict[str, Factory] = {
    node_unschedulable.NAME: node_unschedulable.new,
    node_name.NAME: node_name.new,
    taint_toleration.NAME: taint_toleration.new,
    node_affinity.NAME: node_affinity.new,
    node_ports.NAME: node_ports.new,
    node_resources_fit.NAME: node_resources_fit.new,
    pod_topology_spread.NAME: pod_topology_spread.new,
    inter_pod_affinity.NAME: inter_pod_affinity.new,
    default_preemption.NAME: default_preemption.new,
    balanced_allocation.NAME: balanced_allocation.new,
    image_locality.NAME: image_locality.new,
    default_binder.NAME: default_binder.new,
}

# extension point -> [(plugin, weight)] as kube-scheduler's default profile enables them
DEFAULT_PLUGINS: dict[str, list[tuple[str, int]]] = {
    # NodeUnschedulable and TaintToleration have a PreFilter only to skip their Filter in
    # cycles where no node is cordoned or tainted.
    "preFilter": [(n, 0) for n in (node_unschedulable.NAME, taint_toleration.NAME,
                                   node_affinity.NAME, node_ports.NAME,
                                   node_resources_fit.NAME, pod_topology_spread.NAME,
                                   inter_pod_affinity.NAME, node_name.NAME)],
    "filter": [(n, 0) for n in (node_unschedulable.NAME, node_name.NAME,
                                taint_toleration.NAME, node_affinity.NAME, node_ports.NAME,
                                node_resources_fit.NAME, pod_topology_spread.NAME,
                                inter_pod_affinity.NAME)],
    "postFilter": [(default_preemption.NAME, 0)],
    "preScore": [(n, 0) for n in (taint_toleration.NAME, node_affinity.NAME,
                                  pod_topology_spread.NAME, inter_pod_affinity.NAME,
                                  image_locality.NAME)],
    "score": [(taint_toleration.NAME, 3), (node_affinity.NAME, 2),
              (node_resources_fit.NAME, 1), (pod_topology_spread.NAME, 2),
              (inter_pod_affinity.NAME, 2), (balanced_allocation.NAME, 1),
              (image_locality.NAME, 1)],
    "reserve": [],
    "permit": [],
    "preBind": [],
    "bind": [(default_binder.NAME, 0)],
    "postBind": [],
}
