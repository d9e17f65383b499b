"""The kubelet: the node agent (pod workers, runtime, probes, volumes, node status, server)."""

from tinykube.kubelet.config import KubeletConfig
from tinykube.kubelet.kubelet import Kubelet

__all__ = ["Kubelet", "KubeletConfig"]
