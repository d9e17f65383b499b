"""kubectl against an HTTPS server with --authorization-mode=RBAC: an admin in
system:masters grants a user a Role, and kubectl auth can-i and the user's requests
follow it."""

import pytest

pytestmark = pytest.mark.kubectl

ALICE = "--token=alice-token"


async def test_a_role_binding_decides_what_a_user_may_do(kubectl_for, apiserver_factory, tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('admin-token,admin,1,"system:masters"\nalice-token,alice,2,"devs"\n')
    # over HTTPS: kubectl sends no token to a plain-HTTP server
    running = await apiserver_factory(token="admin-token", token_file=str(tokens), authorization_mode="RBAC",
                                      cert_dir=str(tmp_path / "certs"))
    kubectl = kubectl_for(running)
    assert (await kubectl.run("auth", "can-i", "list", "pods", ALICE, check=False)).stdout.strip() == "no"
    await kubectl.run("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    await kubectl.run("create", "rolebinding", "alice-reads", "--role=pod-reader", "--user=alice")
    assert (await kubectl.run("auth", "can-i", "list", "pods", ALICE)).stdout.strip() == "yes"
    assert (await kubectl.run("auth", "can-i", "delete", "pods", ALICE, check=False)).stdout.strip() == "no"
    assert (await kubectl.run("get", "pods", ALICE)).returncode == 0
    denied = await kubectl.fails("get", "pods", "-n", "kube-system", ALICE)
    assert ('User "alice" cannot list resource "pods" in API group "" in the namespace "kube-system"'
            in denied.stderr)
    listed = (await kubectl.run("auth", "can-i", "--list", ALICE)).stdout
    assert ["pods", "[]", "[]", "[get", "list]"] in kubectl.table(listed)
    assert (await kubectl.run("auth", "can-i", "create", "clusterroles")).stdout.strip() == "yes"  # the admin
