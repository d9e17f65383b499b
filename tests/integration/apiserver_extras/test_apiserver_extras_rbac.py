"""--authorization-mode=RBAC: bootstrap roles, Roles and ClusterRoles through bindings to
users, groups and service accounts, aggregation, and the reviews that report it."""

from __future__ import annotations


import pytest

ADMIN, ALICE = "admin-token", "alice-token"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture
async def rbac(apiserver_factory, tmp_path):
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{ADMIN},admin,1,"system:masters"\n{ALICE},alice,2,"devs"\n')
    return await apiserver_factory(authorization_mode="RBAC", token_file=str(tokens), anonymous_auth=True)


def as_user(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def call(server, method, path, token=None, body=None):
    return await server.request(method, path, body, headers=as_user(token))


async def test_bindings_grant_what_their_roles_allow_and_nothing_more(rbac):
    status, _ = await call(rbac, "GET", f"{RBAC}/clusterrolebindings/cluster-admin", ADMIN)
    assert status == 200
    assert (await call(rbac, "GET", "/version", None))[0] == 200  # public info, even anonymously
    assert (await call(rbac, "GET", "/apis", ALICE))[0] == 200  # discovery for anyone signed in
    status, body = await call(rbac, "GET", "/api/v1/namespaces/default/pods", ALICE)
    assert status == 403 and body["reason"] == "Forbidden"
    assert body["message"] == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
                               'in the namespace "default"')
    role = {"metadata": {"name": "pod-reader", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}]}
    binding = {"metadata": {"name": "read-pods", "namespace": "default"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
               "subjects": [{"kind": "Group", "name": "devs"}]}
    assert (await call(rbac, "POST", f"{RBAC}/namespaces/default/roles", ADMIN, role))[0] == 201
    assert (await call(rbac, "POST", f"{RBAC}/namespaces/default/rolebindings", ADMIN, binding))[0] == 201
    assert (await call(rbac, "GET", "/api/v1/namespaces/default/pods", ALICE))[0] == 200
    assert (await call(rbac, "GET", "/api/v1/namespaces/kube-system/pods", ALICE))[0] == 403
    assert (await call(rbac, "DELETE", "/api/v1/namespaces/default/pods/x", ALICE))[0] == 403
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}}
    _, answer = await call(rbac, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ALICE, review)
    assert answer["status"] == {"allowed": True, "reason": 'RBAC: allowed by RoleBinding "read-pods/default" '
                                                            'of Role "pod-reader" to Group "devs"'}
    rules_review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                    "spec": {"namespace": "default"}}
    _, rules = await call(rbac, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", ALICE,
                          rules_review)
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]} in \
        rules["status"]["resourceRules"]
    assert rules["status"]["incomplete"] is False


async def test_aggregated_cluster_roles_and_service_account_subjects(rbac):
    piece = {"metadata": {"name": "node-lister", "labels": {"aggregate-to-ops": "true"}},
             "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]}
    ops = {"metadata": {"name": "ops"}, "rules": [],
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"aggregate-to-ops": "true"}}]}}
    bind = {"metadata": {"name": "alice-ops"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ops"},
            "subjects": [{"kind": "User", "name": "alice"}]}
    assert (await call(rbac, "GET", "/api/v1/nodes", ALICE))[0] == 403
    for path, obj in ((f"{RBAC}/clusterroles", piece), (f"{RBAC}/clusterroles", ops),
                      (f"{RBAC}/clusterrolebindings", bind)):
        assert (await call(rbac, "POST", path, ADMIN, obj))[0] == 201
    assert (await call(rbac, "GET", "/api/v1/nodes", ALICE))[0] == 200
    # a service account bound without a namespace in its subject: the binding's namespace
    await call(rbac, "POST", "/api/v1/namespaces/default/serviceaccounts", ADMIN, {"metadata": {"name": "robot"}})
    _, token = await call(rbac, "POST", "/api/v1/namespaces/default/serviceaccounts/robot/token", ADMIN,
                          {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    robot = token["status"]["token"]
    assert (await call(rbac, "GET", "/api/v1/namespaces/default/configmaps", robot))[0] == 403
    sa_binding = {"metadata": {"name": "robot-view", "namespace": "default"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cm-reader"},
                  "subjects": [{"kind": "ServiceAccount", "name": "robot"}]}
    reader = {"metadata": {"name": "cm-reader"},
              "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"],
                         "resourceNames": []}]}
    assert (await call(rbac, "POST", f"{RBAC}/clusterroles", ADMIN, reader))[0] == 201
    assert (await call(rbac, "POST", f"{RBAC}/namespaces/default/rolebindings", ADMIN, sa_binding))[0] == 201
    assert (await call(rbac, "GET", "/api/v1/namespaces/default/configmaps", robot))[0] == 200
    assert (await call(rbac, "GET", "/api/v1/namespaces/kube-system/configmaps", robot))[0] == 403


async def test_resource_names_limit_a_rule_to_those_objects(rbac):
    role = {"metadata": {"name": "one-cm", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"],
                       "verbs": ["get"]}]}
    binding = {"metadata": {"name": "one-cm", "namespace": "default"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "one-cm"},
               "subjects": [{"kind": "User", "name": "alice"}]}
    await call(rbac, "POST", f"{RBAC}/namespaces/default/roles", ADMIN, role)
    await call(rbac, "POST", f"{RBAC}/namespaces/default/rolebindings", ADMIN, binding)
    await call(rbac, "POST", "/api/v1/namespaces/default/configmaps", ADMIN, {"metadata": {"name": "settings"}})
    assert (await call(rbac, "GET", "/api/v1/namespaces/default/configmaps/settings", ALICE))[0] == 200
    assert (await call(rbac, "GET", "/api/v1/namespaces/default/configmaps/other", ALICE))[0] == 403
    assert (await call(rbac, "GET", "/api/v1/namespaces/default/configmaps", ALICE))[0] == 403
