"""Authorization: may this user do this verb on this resource?

Each authorizer answers Allow, Deny or NoOpinion; the chain asks them in the order of
``--authorization-mode`` and the first definite answer wins (NoOpinion at the end denies),
as kube-apiserver's union authorizer does. RBAC and Node authorizers plug in by adding to
``AUTHORIZERS``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable, Protocol

from tinykube.apiserver.request import RequestInfo


class Decision(enum.Enum):
    DENY = 0
    ALLOW = 1
    NO_OPINION = 2


@dataclass(frozen=True)
class AuthorizationResult:
    decision: Decision
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


class Authorizer(Protocol):
    async def authorize(self, info: RequestInfo) -> AuthorizationResult: ...


class AlwaysAllow:
    async def authorize(self, info: RequestInfo) -> AuthorizationResult:
        return AuthorizationResult(Decision.ALLOW)


class AlwaysDeny:
    async def authorize(self, info: RequestInfo) -> AuthorizationResult:
        return AuthorizationResult(Decision.NO_OPINION, "Everything is forbidden.")


def _rbac(server: object) -> Authorizer:
    from tinykube.apiserver.rbac import RBACAuthorizer

    return RBACAuthorizer(server)  # type: ignore[arg-type]


def _node(server: object) -> Authorizer:
    from tinykube.apiserver.nodeauthz import NodeAuthorizer

    return NodeAuthorizer(server)  # type: ignore[arg-type]


# mode name (as --authorization-mode spells it) -> factory taking the APIServer
AUTHORIZERS: dict[str, Callable[[object], Authorizer]] = {
    "AlwaysAllow": lambda server: AlwaysAllow(),
    "AlwaysDeny": lambda server: AlwaysDeny(),
    "RBAC": _rbac,
    "Node": _node,
}


class UnionAuthorizer:
    """Asks each authorizer in turn; the first Allow or Deny decides."""

    def __init__(self, authorizers: list[Authorizer]):
        self.authorizers = authorizers

    async def authorize(self, info: RequestInfo) -> AuthorizationResult:
        reasons: list[str] = []
        for authorizer in self.authorizers:
            result = await authorizer.authorize(info)
            if result.decision is not Decision.NO_OPINION:
                return result
            if result.reason:
                reasons.append(result.reason)
        return AuthorizationResult(Decision.DENY, "; ".join(reasons))


def build_authorizer(mode: str, server: object) -> UnionAuthorizer:
    """The chain for a comma-separated ``--authorization-mode``; unknown modes are errors.
    ``system:masters`` goes first, as upstream's privileged-groups authorizer."""
    from tinykube.apiserver.rbac import PrivilegedGroups

    chain: list[Authorizer] = [PrivilegedGroups()]
    for name in (m.strip() for m in mode.split(",") if m.strip()):
        factory = AUTHORIZERS.get(name)
        if factory is None:
            raise ValueError(f"unknown authorization mode {name!r}; "
                             f"supported: {', '.join(sorted(AUTHORIZERS))}")
        chain.append(factory(server))
    return UnionAuthorizer(chain)
