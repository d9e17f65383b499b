"""The cloud controller manager: cloud-specific loops split from kube-controller-manager.

tinykube's cloud is local: its only loop, ``service-lb-controller``, hands out
LoadBalancer addresses from a pool. It runs on the controller manager's machinery
(shared informers, metered queues, health and metrics port, leader election) under its
own Lease, ``kube-system/cloud-controller-manager``, and secure port 10258.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinykube.cloud.servicelb import new_service_lb_controller
from tinykube.controllers.config import ControllerManagerConfig
from tinykube.controllers.manager import ControllerManager
from tinykube.controllers.registry import resolve

CLOUD_CONTROLLERS: dict[str, Any] = {"service-lb-controller": new_service_lb_controller}
ALIASES = {"service": "service-lb-controller"}


@dataclass
class CloudControllerManagerConfig(ControllerManagerConfig):
    lb_ip_range: str = "172.18.255.200-172.18.255.250"
    secure_port: int = 10258
    leader_elect_resource_name: str = "cloud-controller-manager"


def resolve_cloud_controllers(spec: list[str]) -> dict[str, Any]:
    """cloud-controller-manager's --controllers (same syntax as the other manager's)."""
    return resolve(spec, CLOUD_CONTROLLERS, ALIASES)


class CloudControllerManager(ControllerManager):
    component = "cloud-controller-manager"

    def resolve_controllers(self, spec: list[str]) -> dict[str, Any]:
        return resolve_cloud_controllers(spec)
