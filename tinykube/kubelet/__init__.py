"""The kubelet: the node agent (pod workers, runtime, probes, volumes, node status, server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinykube.kubelet.config import KubeletConfig

if TYPE_CHECKING:
    from tinykube.kubelet.kubelet import Kubelet

__all__ = ["Kubelet", "KubeletConfig"]


def __getattr__(name: str):
    # Kubelet on first use: a submodule (config, static, the runtime) can be imported
    # without the whole agent and its HTTP client
    if name == "Kubelet":
        from tinykube.kubelet.kubelet import Kubelet

        return Kubelet
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
