"""RequestInfo parsing follows kube-apiserver's RequestInfoFactory."""

from __future__ import annotations

import pytest

from tinykube.apiserver.request import parse_request_info


@pytest.mark.parametrize("method,path,query,expected", [
    ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "", "v1", "pods", "", "default", "")),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"},
     ("watch", "", "v1", "pods", "", "default", "")),
    ("GET", "/api/v1/watch/namespaces/default/pods/p", {},
     ("watch", "", "v1", "pods", "", "default", "p")),
    ("GET", "/api/v1/pods", {}, ("list", "", "v1", "pods", "", "", "")),
    ("POST", "/api/v1/namespaces/ns/pods/p/binding", {},
     ("create", "", "v1", "pods", "binding", "ns", "p")),
    ("PUT", "/api/v1/namespaces/x/finalize", {},
     ("update", "", "v1", "namespaces", "finalize", "x", "x")),
    ("GET", "/api/v1/namespaces/x", {}, ("get", "", "v1", "namespaces", "", "x", "x")),
    ("DELETE", "/apis/apps/v1/namespaces/ns/deployments", {},
     ("deletecollection", "apps", "v1", "deployments", "", "ns", "")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", {},
     ("patch", "apps", "v1", "deployments", "scale", "ns", "d")),
    ("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin", {},
     ("get", "rbac.authorization.k8s.io", "v1", "clusterroles", "", "", "admin")),
])
def test_resource_requests(method, path, query, expected):
    info = parse_request_info(method, path, query)
    assert info.is_resource_request
    assert (info.verb, info.api_group, info.api_version, info.resource, info.subresource,
            info.namespace, info.name) == expected


@pytest.mark.parametrize("path", ["/version", "/healthz", "/api", "/api/v1", "/apis",
                                  "/apis/apps", "/apis/apps/v1", "/openapi/v2"])
def test_non_resource_requests(path):
    info = parse_request_info("GET", path, {})
    assert not info.is_resource_request and info.verb == "get"
