"""What a pod refers to, for the Node authorizer; who is a node; what NodeRestriction lets it
change on its Node."""

from __future__ import annotations

import pytest

from tinykube.api import errors, kinds
from tinykube.apiserver.admission import CREATE, UPDATE, Attributes
from tinykube.apiserver.admission.node_restriction import NodeRestriction
from tinykube.apiserver.nodeauthz import node_of, references
from tinykube.apiserver.request import UserInfo


def test_every_kind_of_reference_counts():
    pod = {"metadata": {"name": "p"}, "spec": {
        "imagePullSecrets": [{"name": "pull"}],
        "volumes": [{"name": "s", "secret": {"secretName": "vol-secret"}},
                    {"name": "c", "configMap": {"name": "vol-cm"}},
                    {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
                    {"name": "x", "projected": {"sources": [{"secret": {"name": "proj-secret"}},
                                                            {"configMap": {"name": "proj-cm"}}]}}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-secret"}}]}],
        "containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-cm"}}}],
                        "envFrom": [{"configMapRef": {"name": "from-cm"}}]}]}}
    assert references(pod) == {
        "secrets": {"pull", "vol-secret", "proj-secret", "init-secret"},
        "configmaps": {"vol-cm", "proj-cm", "env-cm", "from-cm"},
        "persistentvolumeclaims": {"data", "p-scratch"}}


def test_a_node_is_its_user_in_the_nodes_group():
    assert node_of(UserInfo("system:node:n1", ("system:nodes",))) == "n1"
    assert node_of(UserInfo("system:node:n1", ())) is None
    assert node_of(UserInfo("alice", ("system:nodes",))) is None


async def test_node_restriction_keeps_a_kubelet_to_its_own_labels_and_taints():
    plugin = NodeRestriction(server=None)
    kubelet = UserInfo("system:node:n1", ("system:nodes",))
    nodes = kinds.lookup("", "v1", "nodes")

    def node(labels: dict, taints: list | None = None) -> dict:
        return {"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints or []}}

    own = {"kubernetes.io/hostname": "n1", "node.kubernetes.io/exclude-from-external-load-balancers": "",
           "example.com/team": "a"}
    await plugin.validate(Attributes(CREATE, nodes, "", "n1", node(own, [{"key": "k", "effect": "NoSchedule"}]),
                                     None, kubelet))
    with pytest.raises(errors.ApiError) as denied:
        await plugin.validate(Attributes(CREATE, nodes, "", "n1", node({"node-role.kubernetes.io/control-plane": ""}),
                                         None, kubelet))
    assert denied.value.code == 403 and denied.value.message == (
        'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
        "node-role.kubernetes.io/control-plane")
    with pytest.raises(errors.ApiError) as denied:
        await plugin.validate(Attributes(UPDATE, nodes, "", "n1", node({"node-restriction.kubernetes.io/x": "1"}),
                                         node({}), kubelet))
    assert "not allowed to modify labels: node-restriction.kubernetes.io/x" in denied.value.message
    with pytest.raises(errors.ApiError) as denied:
        await plugin.validate(Attributes(UPDATE, nodes, "", "n1", node({}, [{"key": "k"}]), node({}), kubelet))
    assert 'node "n1" is not allowed to modify taints' in denied.value.message
    admin = UserInfo("admin", ("system:masters",))
    await plugin.validate(Attributes(UPDATE, nodes, "", "n1", node({}, [{"key": "k"}]), node({}), admin))
