"""The RBAC authorizer (``--authorization-mode=RBAC``) and the policy a cluster starts with.

A request is allowed when a rule of a role bound to its user allows it: ClusterRoleBindings
for every request, RoleBindings of the request's namespace for namespaced ones. Roles and
bindings are read from the watch cache on each request, so a binding works as soon as it
is stored. An aggregated ClusterRole (``aggregationRule``) holds the rules of the
ClusterRoles its selectors match, computed here on each request (upstream's
clusterrole-aggregation controller writes them into the role instead). RBAC only allows:
what no rule allows gets no opinion, and the chain's end denies it.

With RBAC in the mode the server also creates upstream's bootstrap roles that every
cluster needs to be usable (``cluster-admin`` bound to ``system:masters``, discovery,
self-reviews and public info for everyone); ``view``/``edit``/``admin`` are not among them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from tinykube.api import kinds, meta
from tinykube.api.selectors import LabelSelector
from tinykube.apiserver.authz import AuthorizationResult, Decision
from tinykube.apiserver.request import RequestInfo, UserInfo

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

GROUP = "rbac.authorization.k8s.io"
ROLES = kinds.lookup(GROUP, "v1", "roles")
CLUSTER_ROLES = kinds.lookup(GROUP, "v1", "clusterroles")
ROLE_BINDINGS = kinds.lookup(GROUP, "v1", "rolebindings")
CLUSTER_ROLE_BINDINGS = kinds.lookup(GROUP, "v1", "clusterrolebindings")
PRIVILEGED_GROUP = "system:masters"
Obj = dict[str, Any]


class PrivilegedGroups:
    """``system:masters`` may do anything, whatever the other authorizers say (upstream
    puts this first in every chain)."""

    async def authorize(self, info: RequestInfo) -> AuthorizationResult:
        if PRIVILEGED_GROUP in info.user.groups:
            return AuthorizationResult(Decision.ALLOW)
        return AuthorizationResult(Decision.NO_OPINION)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Obj], list[Obj], bool]:
        if PRIVILEGED_GROUP not in user.groups:
            return [], [], False
        return ([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                [{"verbs": ["*"], "nonResourceURLs": ["*"]}], False)


class RBACAuthorizer:
    def __init__(self, server: "APIServer") -> None:
        self.server = server

    async def authorize(self, info: RequestInfo) -> AuthorizationResult:
        for source, rules in self._bound_rules(info.user, info.namespace):
            if any(rule_allows(rule, info) for rule in rules):
                return AuthorizationResult(Decision.ALLOW, f"RBAC: allowed by {source}")
        return AuthorizationResult(Decision.NO_OPINION)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Obj], list[Obj], bool]:
        """SelfSubjectRulesReview's rules: every rule bound to the user there."""
        resource: list[Obj] = []
        non_resource: list[Obj] = []
        for _, rules in self._bound_rules(user, namespace):
            for rule in rules:
                if rule.get("nonResourceURLs"):
                    non_resource.append({"verbs": rule.get("verbs") or [],
                                         "nonResourceURLs": rule["nonResourceURLs"]})
                else:
                    resource.append({k: rule[k] for k in ("verbs", "apiGroups", "resources", "resourceNames")
                                     if rule.get(k)})
        return resource, non_resource, False

    def _bound_rules(self, user: UserInfo, namespace: str) -> Iterator[tuple[str, list[Obj]]]:
        """(how the user holds them, rules) per binding that names the user."""
        cache = self.server.watch_cache
        for entry in cache.list(CLUSTER_ROLE_BINDINGS, ""):
            binding = entry.obj
            subject = _subject_for(binding, user, "")
            if subject is not None and (binding.get("roleRef") or {}).get("kind") == "ClusterRole":
                role = binding["roleRef"].get("name", "")
                yield (f'ClusterRoleBinding "{meta.name(binding)}" of ClusterRole "{role}" to {subject}',
                       self._cluster_role_rules(role))
        if not namespace:
            return
        for entry in cache.list(ROLE_BINDINGS, namespace):
            binding = entry.obj
            subject = _subject_for(binding, user, namespace)
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            kind, role = ref.get("kind", ""), ref.get("name", "")
            if kind == "Role":
                found = cache.get(ROLES, namespace, role)
                rules = (found.obj.get("rules") or []) if found is not None else []
            elif kind == "ClusterRole":
                rules = self._cluster_role_rules(role)
            else:
                continue
            yield f'RoleBinding "{meta.name(binding)}/{namespace}" of {kind} "{role}" to {subject}', rules

    def _cluster_role_rules(self, name: str) -> list[Obj]:
        found = self.server.watch_cache.get(CLUSTER_ROLES, "", name)
        if found is None:
            return []
        role = found.obj
        aggregation = role.get("aggregationRule")
        if not aggregation:
            return role.get("rules") or []
        selectors = [LabelSelector.from_dict(s) for s in aggregation.get("clusterRoleSelectors") or []]
        rules: list[Obj] = []
        for entry in self.server.watch_cache.list(CLUSTER_ROLES, ""):
            other = entry.obj
            if meta.name(other) != name and not other.get("aggregationRule") and \
                    any(s.matches(meta.labels(other)) for s in selectors):
                rules += other.get("rules") or []
        return rules


def _subject_for(binding: Obj, user: UserInfo, namespace: str) -> str | None:
    """How the binding names the user (``User "alice"``), or None if it does not."""
    for subject in binding.get("subjects") or []:
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User" and name == user.name:
            return f'User "{name}"'
        if kind == "Group" and name in user.groups:
            return f'Group "{name}"'
        if kind == "ServiceAccount":
            sa_namespace = subject.get("namespace") or namespace
            if user.name == f"system:serviceaccount:{sa_namespace}:{name}":
                return f'ServiceAccount "{name}/{sa_namespace}"'
    return None


def rule_allows(rule: Obj, info: RequestInfo) -> bool:
    if not _has(rule.get("verbs"), info.verb):
        return False
    if not info.is_resource_request:
        return any(url == "*" or url == info.path or (url.endswith("*") and info.path.startswith(url[:-1]))
                   for url in rule.get("nonResourceURLs") or [])
    if not _has(rule.get("apiGroups"), info.api_group):
        return False
    resources = rule.get("resources") or []
    wanted = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    if not ("*" in resources or wanted in resources or
            (info.subresource and f"*/{info.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or info.name in names


def _has(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)


# -- the bootstrap policy --------------------------------------------------------------------

BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
PUBLIC_INFO = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
CLUSTER_ROLES_TO_BOOTSTRAP: dict[str, list[Obj]] = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}],
    "system:discovery": [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                              "/openapi", "/openapi/*", "/readyz", "/version", "/version/"],
                          "verbs": ["get"]}],
    "system:basic-user": [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
         "verbs": ["create"]}],
    "system:public-info-viewer": [{"nonResourceURLs": PUBLIC_INFO, "verbs": ["get"]}],
}
BINDINGS_TO_BOOTSTRAP: dict[str, list[str]] = {  # ClusterRole -> the groups bound to it
    "cluster-admin": [PRIVILEGED_GROUP],
    "system:discovery": ["system:authenticated"],
    "system:basic-user": ["system:authenticated"],
    "system:public-info-viewer": ["system:authenticated", "system:unauthenticated"],
}


async def bootstrap_policy(server: "APIServer") -> None:
    """Create the bootstrap ClusterRoles and ClusterRoleBindings that are missing."""
    from tinykube.apiserver.bootstrap import ensure

    for name, rules in CLUSTER_ROLES_TO_BOOTSTRAP.items():
        await ensure(server, CLUSTER_ROLES, {"metadata": _bootstrap_meta(name), "rules": rules})
    for role, groups in BINDINGS_TO_BOOTSTRAP.items():
        await ensure(server, CLUSTER_ROLE_BINDINGS, {
            "metadata": _bootstrap_meta(role),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups]})


def _bootstrap_meta(name: str) -> Obj:
    return {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(AUTOUPDATE)}
