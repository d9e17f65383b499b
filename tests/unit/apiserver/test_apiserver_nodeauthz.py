"""What a pod refers to, for the Node authorizer, and who is a node."""

from __future__ import annotations

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
