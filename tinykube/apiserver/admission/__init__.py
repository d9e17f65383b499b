"""Admission: plugins that may change (mutating) or refuse (validating) a write.

The chain runs in ``--enable-admission-plugins`` order, mutating plugins first, as
kube-apiserver does; a plugin refuses by raising an ``ApiError``. Plugins are registered by
upstream's names in ``PLUGINS`` so that the flag configures them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from tinykube.api.kinds import ResourceInfo
from tinykube.apiserver.request import UserInfo

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

log = logging.getLogger(__name__)

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"


@dataclass
class Attributes:
    """What a plugin sees of one write (admission.Attributes upstream)."""

    operation: str
    resource: ResourceInfo
    namespace: str
    name: str
    obj: dict | None
    old: dict | None
    user: UserInfo
    subresource: str = ""
    dry_run: bool = False

    def created_pod(self) -> dict | None:
        """The body of a pod being created (not a subresource), which the pod-defaulting
        plugins change in place; None for any other write."""
        if self.operation != CREATE or self.resource.resource != "pods" or self.subresource:
            return None
        return self.obj


class MutatingPlugin(Protocol):
    name: str

    async def admit(self, attrs: Attributes) -> None:
        """Change ``attrs.obj`` in place, or raise ApiError to refuse."""


class ValidatingPlugin(Protocol):
    name: str

    async def validate(self, attrs: Attributes) -> None:
        """Raise ApiError to refuse; never change the object."""


def _registry() -> dict[str, Callable[["APIServer"], Any]]:
    from tinykube.apiserver.admission import (default_toleration_seconds, namespace_lifecycle,
                                              node_restriction, priority, resource_quota,
                                              service_account)

    return {
        "NamespaceLifecycle": namespace_lifecycle.NamespaceLifecycle,
        "ServiceAccount": service_account.ServiceAccount,
        "DefaultTolerationSeconds": default_toleration_seconds.DefaultTolerationSeconds,
        "Priority": priority.Priority,
        "ResourceQuota": resource_quota.ResourceQuota,
        "NodeRestriction": node_restriction.NodeRestriction,
    }


# Plugins added by other modules (e.g. ResourceQuota, LimitRanger): name -> factory(server).
EXTRA_PLUGINS: dict[str, Callable[["APIServer"], Any]] = {}


class AdmissionChain:
    def __init__(self, plugins: list[Any]):
        self.mutating = [p for p in plugins if hasattr(p, "admit")]
        self.validating = [p for p in plugins if hasattr(p, "validate")]

    async def admit(self, attrs: Attributes) -> None:
        for plugin in self.mutating:
            await plugin.admit(attrs)

    async def validate(self, attrs: Attributes) -> None:
        for plugin in self.validating:
            await plugin.validate(attrs)


def build_admission_chain(names: list[str], server: "APIServer") -> AdmissionChain:
    """Instantiate the named plugins; a name nobody implements is a configuration error,
    except the upstream defaults tinykube does not implement yet, which are logged."""
    registry = {**_registry(), **EXTRA_PLUGINS}
    plugins = []
    for name in names:
        factory = registry.get(name)
        if factory is None:
            if name in NOT_YET_IMPLEMENTED:
                log.info("admission plugin %s is not available; skipping it", name)
                continue
            raise ValueError(f"unknown admission plugin {name!r}; "
                             f"supported: {', '.join(sorted(registry))}")
        plugins.append(factory(server))
    return AdmissionChain(plugins)


# Upstream default plugins whose modules register themselves in EXTRA_PLUGINS when present.
NOT_YET_IMPLEMENTED = frozenset({"LimitRanger"})
