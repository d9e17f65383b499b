"""A kubelet under --authorization-mode=Node,RBAC with NodeRestriction, as the tutorial's
kube-apiserver runs: it registers, renews its Lease and runs a pod whose Secret and
ConfigMap it may read because the pod is bound to it; another node may not read them, nor
write what is not its own."""

from __future__ import annotations

import pytest

from tinykube.api import pods as podutil
from tinykube.apiserver.server import DEFAULT_ADMISSION_PLUGINS
from tinykube.testing.kubelet import wait_for_pod

TOKENS = ('admin,admin,1,"system:masters"\nnode-1,system:node:node-1,2,"system:nodes"\n'
          'node-2,system:node:node-2,3,"system:nodes"\n')


@pytest.fixture
async def apiserver(apiserver_factory, tmp_path):
    """The kubelet_factory's server: Node and RBAC authorization, NodeRestriction admission."""
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(TOKENS)
    return await apiserver_factory(token="admin", token_file=str(tokens), authorization_mode="Node,RBAC",
                                   enable_admission_plugins=[*DEFAULT_ADMISSION_PLUGINS, "NodeRestriction"])


def as_node(n: int) -> dict[str, str]:
    return {"Authorization": f"Bearer node-{n}"}


async def test_a_kubelet_runs_its_pods_with_only_what_they_refer_to(apiserver, kubelet_factory):
    async with apiserver.client() as admin:
        await admin.resource("secrets").create({"metadata": {"name": "creds"}, "stringData": {"k": "v"}},
                                               namespace="default")
        await admin.resource("configmaps").create({"metadata": {"name": "settings"}, "data": {"a": "b"}},
                                                  namespace="default")
    await kubelet_factory("node-1", client=apiserver.client(token="node-1"))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
           "spec": {"nodeName": "node-1", "containers": [{
               "name": "c", "image": "busybox", "command": ["sleep", "300"],
               "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}}],
               "envFrom": [{"configMapRef": {"name": "settings"}}]}]}}
    async with apiserver.client() as admin:
        await admin.resource("pods").create(pod, namespace="default")
        running = await wait_for_pod(admin, "default", "app", podutil.is_ready, timeout=30)
        node = await admin.resource("nodes").get("node-1")
        lease = await admin.resource("leases").get("node-1", namespace="kube-node-lease")
        events = await admin.resource("events").list(namespace="default",
                                                     field_selector="involvedObject.name=app")
    assert "Started" in {e["reason"] for e in events["items"]}  # the kubelet's own Events went through
    assert running["status"]["phase"] == "Running"
    assert node["metadata"]["name"] == "node-1" and lease["spec"]["holderIdentity"] == "node-1"

    status, body = await apiserver.request("GET", "/api/v1/namespaces/default/secrets/creds", headers=as_node(2))
    assert status == 403
    assert body["message"] == ('secrets "creds" is forbidden: User "system:node:node-2" cannot get resource '
                               '"secrets" in API group "" in the namespace "default": no relationship found '
                               "between node 'node-2' and this object")
    assert (await apiserver.request("GET", "/api/v1/namespaces/default/secrets/creds", headers=as_node(1)))[0] == 200
    assert (await apiserver.request("GET", "/api/v1/namespaces/default/secrets", headers=as_node(1)))[0] == 403
    status, body = await apiserver.request("PATCH", "/api/v1/nodes/node-1/status", {"status": {}},
                                           content_type="application/merge-patch+json", headers=as_node(2))
    assert status == 403 and 'node "node-2" is not allowed to modify node "node-1"' in body["message"]
    plain = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sneaky"},
             "spec": {"nodeName": "node-2", "containers": [{"name": "c", "image": "busybox"}]}}
    status, body = await apiserver.request("POST", "/api/v1/namespaces/default/pods", plain, headers=as_node(2))
    assert status == 403 and "node \"node-2\" can only create mirror pods" in body["message"]
    status, body = await apiserver.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/"
                                                  "leases/node-1", headers=as_node(2))
    assert status == 403 and "can only access node lease with the same name as the requesting node" in body["message"]
    status, _ = await apiserver.request("DELETE", "/api/v1/namespaces/default/pods/app", headers=as_node(2))
    assert status == 403
