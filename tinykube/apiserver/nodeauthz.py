"""The Node authorizer (``--authorization-mode=Node``): what a kubelet may read and write.

A kubelet is the user ``system:node:<name>`` in the group ``system:nodes``. It may do what
upstream's node rules allow (read Services and pods, register and report its Node, post
Events and pod status, renew Leases, ...), and read a Secret, ConfigMap,
PersistentVolumeClaim or PersistentVolume, or ask for a service account token, only when
a pod bound to it refers to that object. Upstream keeps a graph of those relations; here
they are looked up in the watch cache on each request, so a pod's references count from
the moment it is bound. Which objects such writes may touch (its own Node, mirror pods,
pods bound to it) is NodeRestriction admission's to check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from tinykube.api import kinds, meta
from tinykube.apiserver.authz import AuthorizationResult, Decision
from tinykube.apiserver.rbac import rule_allows
from tinykube.apiserver.request import RequestInfo, UserInfo

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

NODE_PREFIX, NODES_GROUP = "system:node:", "system:nodes"
NODE_LEASE_NAMESPACE = "kube-node-lease"
PODS = kinds.lookup("", "v1", "pods")
PVCS = kinds.lookup("", "v1", "persistentvolumeclaims")
READ = ["get", "list", "watch"]
Obj = dict[str, Any]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Obj:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


# upstream's bootstrap NodeRules, less what the graph and lease checks below decide
NODE_RULES = [
    _rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
    _rule(["authorization.k8s.io"], ["subjectaccessreviews", "localsubjectaccessreviews"], ["create"]),
    _rule([""], ["services"], READ),
    _rule([""], ["nodes"], ["create", "get", "list", "watch", "update", "patch"]),
    _rule([""], ["nodes/status"], ["update", "patch"]),
    _rule([""], ["events"], ["create", "update", "patch"]),
    _rule(["events.k8s.io"], ["events"], ["create", "update", "patch"]),
    _rule([""], ["pods"], [*READ, "create", "delete"]),
    _rule([""], ["pods/status"], ["update", "patch"]),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule([""], ["endpoints"], ["get"]),
    _rule(["certificates.k8s.io"], ["certificatesigningrequests"], ["create", "get", "list", "watch"]),
    _rule([""], ["persistentvolumeclaims/status"], ["get", "update", "patch"]),
    _rule(["storage.k8s.io"], ["volumeattachments"], ["get"]),
    _rule(["storage.k8s.io"], ["csidrivers"], READ),
    _rule(["storage.k8s.io"], ["csinodes"], ["get", "create", "update", "patch", "delete"]),
    _rule(["node.k8s.io"], ["runtimeclasses"], READ),
]
REFERENCED = {"secrets", "configmaps", "persistentvolumeclaims", "persistentvolumes"}
LEASE_VERBS = {"get", "create", "update", "patch", "delete"}


def node_of(user: UserInfo) -> str | None:
    """The node a user is the kubelet of, or None."""
    if NODES_GROUP in user.groups and user.name.startswith(NODE_PREFIX):
        return user.name[len(NODE_PREFIX):] or None
    return None


class NodeAuthorizer:
    def __init__(self, server: "APIServer") -> None:
        self.server = server

    async def authorize(self, info: RequestInfo) -> AuthorizationResult:
        node = node_of(info.user)
        if node is None or not info.is_resource_request:
            return AuthorizationResult(Decision.NO_OPINION)
        if info.api_group == "" and info.resource in REFERENCED and not info.subresource:
            return self._referenced(node, info)
        if info.api_group == "" and info.resource == "serviceaccounts" and info.subresource == "token":
            used = info.verb == "create" and any(
                (p.get("spec") or {}).get("serviceAccountName", "default") == info.name
                for p in self._pods_on(node, info.namespace))
            return self._related(used, node)
        if info.api_group == "coordination.k8s.io" and info.resource == "leases":
            return _lease(node, info)
        if any(rule_allows(rule, info) for rule in NODE_RULES):
            return AuthorizationResult(Decision.ALLOW)
        return AuthorizationResult(Decision.NO_OPINION)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Obj], list[Obj], bool]:
        """The static rules only; what the pods' references allow is not listed."""
        if node_of(user) is None:
            return [], [], False
        return [dict(r) for r in NODE_RULES], [], True

    def _referenced(self, node: str, info: RequestInfo) -> AuthorizationResult:
        if info.verb not in READ or not info.name:
            return AuthorizationResult(Decision.NO_OPINION, f"can only {'/'.join(READ)} individual "
                                       f"{info.resource} referenced by pods bound to node '{node}'")
        if info.resource == "persistentvolumes":
            claims = {(meta.namespace(p), claim) for p in self._pods_on(node, "")
                      for claim in references(p)["persistentvolumeclaims"]}
            return self._related(any(self._bound_volume(ns, claim) == info.name for ns, claim in claims), node)
        found = any(info.name in references(p)[info.resource] for p in self._pods_on(node, info.namespace))
        return self._related(found, node)

    def _bound_volume(self, namespace: str, claim: str) -> str:
        found = self.server.watch_cache.get(PVCS, namespace, claim)
        return ((found.obj.get("spec") or {}).get("volumeName") or "") if found is not None else ""

    def _pods_on(self, node: str, namespace: str) -> Iterator[Obj]:
        for entry in self.server.watch_cache.list(PODS, namespace):
            if (entry.obj.get("spec") or {}).get("nodeName") == node:
                yield entry.obj

    @staticmethod
    def _related(found: bool, node: str) -> AuthorizationResult:
        if found:
            return AuthorizationResult(Decision.ALLOW)
        return AuthorizationResult(Decision.NO_OPINION, f"no relationship found between node '{node}' and this object")


def _lease(node: str, info: RequestInfo) -> AuthorizationResult:
    if info.verb not in LEASE_VERBS:
        return AuthorizationResult(Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease")
    if info.namespace != NODE_LEASE_NAMESPACE:
        return AuthorizationResult(Decision.NO_OPINION,
                                   f"can only access leases in the {NODE_LEASE_NAMESPACE} system namespace")
    if info.verb != "create" and info.name != node:  # a create's name is NodeRestriction's to check
        return AuthorizationResult(Decision.NO_OPINION,
                                   "can only access node lease with the same name as the requesting node")
    return AuthorizationResult(Decision.ALLOW)


def references(pod: Obj) -> dict[str, set[str]]:
    """The Secrets, ConfigMaps and claims a pod's volumes, environment and image pull
    secrets name."""
    spec = pod.get("spec") or {}
    out: dict[str, set[str]] = {"secrets": set(), "configmaps": set(), "persistentvolumeclaims": set()}
    out["secrets"] |= {s.get("name", "") for s in spec.get("imagePullSecrets") or []}
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            out["secrets"].add((volume["secret"] or {}).get("secretName", ""))
        if "configMap" in volume:
            out["configmaps"].add((volume["configMap"] or {}).get("name", ""))
        if "persistentVolumeClaim" in volume:
            out["persistentvolumeclaims"].add((volume["persistentVolumeClaim"] or {}).get("claimName", ""))
        if "ephemeral" in volume:
            out["persistentvolumeclaims"].add(f"{meta.name(pod)}-{volume.get('name', '')}")
        for source in ((volume.get("projected") or {}).get("sources") or []):
            if "secret" in source:
                out["secrets"].add((source["secret"] or {}).get("name", ""))
            if "configMap" in source:
                out["configmaps"].add((source["configMap"] or {}).get("name", ""))
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
              *(spec.get("ephemeralContainers") or [])]:
        for env in c.get("env") or []:
            source = env.get("valueFrom") or {}
            if "secretKeyRef" in source:
                out["secrets"].add((source["secretKeyRef"] or {}).get("name", ""))
            if "configMapKeyRef" in source:
                out["configmaps"].add((source["configMapKeyRef"] or {}).get("name", ""))
        for env_from in c.get("envFrom") or []:
            if "secretRef" in env_from:
                out["secrets"].add((env_from["secretRef"] or {}).get("name", ""))
            if "configMapRef" in env_from:
                out["configmaps"].add((env_from["configMapRef"] or {}).get("name", ""))
    return out
