"""Discovery documents built from the kinds registry, in upstream's shapes."""

from tinykube.apiserver import discovery

KUBECTL_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
                  "application/json")


def _by_name(doc: dict) -> dict[str, dict]:
    return {r["name"]: r for r in doc["resources"]}


def test_core_resource_list_has_pods_with_upstream_fields():
    doc = discovery.resource_list("", "v1")
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    assert "apiVersion" not in doc
    pods = _by_name(doc)["pods"]
    assert pods["singularName"] == "pod" and pods["namespaced"] is True
    assert pods["kind"] == "Pod" and pods["shortNames"] == ["po"]
    assert pods["categories"] == ["all"]
    assert pods["storageVersionHash"] == "xPOwRZ+Yhw8="
    assert set(pods["verbs"]) == {"create", "delete", "deletecollection", "get", "list",
                                  "patch", "update", "watch"}


def test_pod_subresources_have_upstream_kinds_and_verbs():
    res = _by_name(discovery.resource_list("", "v1"))
    assert res["pods/status"]["kind"] == "Pod"
    assert res["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert res["pods/log"] == {"name": "pods/log", "singularName": "", "namespaced": True,
                               "kind": "Pod", "verbs": ["get"]}
    assert res["pods/binding"]["kind"] == "Binding"
    assert res["pods/binding"]["verbs"] == ["create"]
    assert res["pods/exec"]["kind"] == "PodExecOptions"
    assert res["pods/exec"]["verbs"] == ["create", "get"]
    assert res["pods/eviction"]["group"] == "policy"
    assert res["pods/eviction"]["kind"] == "Eviction"
    assert res["serviceaccounts/token"]["group"] == "authentication.k8s.io"


def test_scale_subresource_is_autoscaling_v1_scale():
    res = _by_name(discovery.resource_list("apps", "v1"))
    scale = res["deployments/scale"]
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert scale["verbs"] == ["get", "patch", "update"]
    assert res["deployments"]["storageVersionHash"] == "8aSe+NMegvE="


def test_cluster_scoped_and_create_only_resources():
    res = _by_name(discovery.resource_list("", "v1"))
    assert res["nodes"]["namespaced"] is False
    assert res["componentstatuses"]["verbs"] == ["get", "list"]
    reviews = _by_name(discovery.resource_list("authorization.k8s.io", "v1"))
    assert reviews["selfsubjectaccessreviews"]["verbs"] == ["create"]


def test_group_list_has_preferred_versions_and_no_core_group():
    doc = discovery.api_group_list()
    assert doc["kind"] == "APIGroupList"
    names = [g["name"] for g in doc["groups"]]
    assert "" not in names and names[0] == "apps"
    apps = doc["groups"][0]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert apps["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]


def test_api_versions_reports_server_address():
    doc = discovery.api_versions("127.0.0.1:6443")
    assert doc["versions"] == ["v1"]
    assert doc["serverAddressByClientCIDRs"] == [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]


def test_negotiation_prefers_the_clients_first_supported_form():
    assert discovery.negotiate_aggregated(KUBECTL_ACCEPT) == "v2"
    assert discovery.negotiate_aggregated(KUBECTL_ACCEPT.split(",", 1)[1]) == "v2beta1"
    assert discovery.negotiate_aggregated("application/json") is None
    assert discovery.negotiate_aggregated("") is None
    assert discovery.negotiate_aggregated(
        "application/json;g=apidiscovery.k8s.io;v=v9;as=APIGroupDiscoveryList") is None


def test_aggregated_discovery_core_and_groups():
    core = discovery.aggregated_list(core=True, version="v2")
    assert core["kind"] == "APIGroupDiscoveryList"
    assert core["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert [i["metadata"]["name"] for i in core["items"]] == [""]
    version = core["items"][0]["versions"][0]
    assert version["version"] == "v1" and version["freshness"] == "Current"
    pods = next(r for r in version["resources"] if r["resource"] == "pods")
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["exec"]["responseKind"]["kind"] == "PodExecOptions"
    groups = discovery.aggregated_list(core=False, version="v2beta1")
    apps = next(i for i in groups["items"] if i["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    nodes = next(r for r in version["resources"] if r["resource"] == "nodes")
    assert nodes["scope"] == "Cluster"


def test_documents_have_stable_etags():
    a, b = discovery.DiscoveryDocuments(), discovery.DiscoveryDocuments()
    assert a.groups.etag == b.groups.etag
    assert a.resource_lists[("", "v1")].etag != a.resource_lists[("apps", "v1")].etag
    agg = a.aggregated[(True, "v2")]
    assert agg.content_type == ("application/json;g=apidiscovery.k8s.io;v=v2;"
                                "as=APIGroupDiscoveryList")
