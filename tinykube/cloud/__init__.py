"""The cloud controller manager: LoadBalancer addresses from a local pool."""

from tinykube.cloud.manager import CloudControllerManager, CloudControllerManagerConfig

__all__ = ["CloudControllerManager", "CloudControllerManagerConfig"]
