"""NodeRestriction: a kubelet writes only what is its own.

The Node authorizer lets a kubelet (``system:node:<name>``) create pods, update pod
status, write Nodes and Leases; this plugin narrows that, as upstream's does, to mirror
pods bound to it, the pods bound to it, its own Node object and its own Lease. On its
Node it may set only the kubelet's own labels in the ``kubernetes.io`` and ``k8s.io``
namespaces (never ``node-restriction.kubernetes.io/``), and change taints only when it
registers. Writes by any other user pass untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinykube.api import errors, kinds
from tinykube.apiserver.admission import CREATE, DELETE, UPDATE, Attributes
from tinykube.apiserver.nodeauthz import node_of

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
PODS = kinds.lookup("", "v1", "pods")
# upstream's kubelet labels: what a kubelet may set in the kubernetes.io and k8s.io namespaces
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone", "topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region"})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


class NodeRestriction:
    name = "NodeRestriction"

    def __init__(self, server: "APIServer"):
        self.server = server

    async def validate(self, attrs: Attributes) -> None:
        node = node_of(attrs.user)
        if node is None:
            return
        group, resource = attrs.resource.group, attrs.resource.resource
        if group == "" and resource == "pods":
            self._pod(node, attrs)
        elif group == "" and resource == "nodes" and attrs.operation in (CREATE, UPDATE, DELETE):
            self._node(node, attrs)
        elif group == "coordination.k8s.io" and resource == "leases" and attrs.name != node:
            raise _forbidden(attrs, "can only access node lease with the same name as the requesting node")

    def _pod(self, node: str, attrs: Attributes) -> None:
        if attrs.operation == CREATE and not attrs.subresource:
            pod = attrs.obj or {}
            if MIRROR_ANNOTATION not in ((pod.get("metadata") or {}).get("annotations") or {}):
                raise _forbidden(attrs, f'pod does not have "{MIRROR_ANNOTATION}" annotation, '
                                        f'node "{node}" can only create mirror pods')
            if (pod.get("spec") or {}).get("nodeName") != node:
                raise _forbidden(attrs, f'node "{node}" can only create pods with spec.nodeName set to itself')
            return
        bound = self._bound_node(attrs)
        if attrs.operation == DELETE and not attrs.subresource and bound != node:
            raise _forbidden(attrs, f'node "{node}" can only delete pods with spec.nodeName set to itself')
        if attrs.operation == UPDATE and attrs.subresource == "status" and bound != node:
            raise _forbidden(attrs, f'node "{node}" can only update pod status for pods with spec.nodeName '
                                    "set to itself")
        if attrs.operation == CREATE and attrs.subresource == "eviction" and bound != node:
            raise _forbidden(attrs, f'node "{node}" can only evict pods with spec.nodeName set to itself')

    def _node(self, node: str, attrs: Attributes) -> None:
        if attrs.name != node:
            raise _forbidden(attrs, f'node "{node}" is not allowed to modify node "{attrs.name}"')
        if attrs.operation == DELETE or attrs.obj is None:
            return
        old = attrs.old or {}
        labels, old_labels = _labels(attrs.obj), _labels(old)
        changed = {k for k in set(labels) | set(old_labels) if labels.get(k) != old_labels.get(k)}
        forbidden = sorted(k for k in changed if _forbidden_label(k))
        if forbidden:
            verb = "set the following labels" if attrs.operation == CREATE else "modify labels"
            raise _forbidden(attrs, f'node "{node}" is not allowed to {verb}: {", ".join(forbidden)}')
        if attrs.operation == UPDATE and (attrs.obj.get("spec") or {}).get("taints") != \
                (old.get("spec") or {}).get("taints"):
            raise _forbidden(attrs, f'node "{node}" is not allowed to modify taints')

    def _bound_node(self, attrs: Attributes) -> str:
        pod = attrs.old
        if pod is None:
            cached = self.server.watch_cache.get(PODS, attrs.namespace, attrs.name)
            pod = cached.obj if cached is not None else {}
        return (pod.get("spec") or {}).get("nodeName") or ""


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _forbidden_label(key: str) -> bool:
    """Upstream's rule: ``node-restriction.kubernetes.io/`` never; other keys in the
    kubernetes.io and k8s.io namespaces only if they are kubelet labels."""
    prefix = key.rpartition("/")[0] if "/" in key else ""

    def within(domain: str) -> bool:
        return prefix == domain or prefix.endswith("." + domain)

    if within("node-restriction.kubernetes.io"):
        return True
    if not (within("kubernetes.io") or within("k8s.io")):
        return False
    return key not in KUBELET_LABELS and not any(within(ns) for ns in KUBELET_LABEL_NAMESPACES)


def _forbidden(attrs: Attributes, detail: str) -> errors.ApiError:
    return errors.forbidden(attrs.resource.resource, attrs.name, detail, attrs.resource.group)
