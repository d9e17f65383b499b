"""Namespaces, ServiceAccounts, root CA ConfigMaps and Endpoints against a real API server."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.testutil import (PodReadier, RunningControllers, load_example,
                                           wait_for_list, wait_for_object)


async def test_deleting_a_namespace_removes_everything_in_it(api):
    namespaces = api.resource("namespaces")
    await namespaces.create({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "doomed"}})
    async with RunningControllers(api, ["*"]):
        await api.resource("deployments", "apps").create(load_example("web-deployment.yaml"),
                                                          namespace="doomed")
        await api.resource("services").create(load_example("web-service.yaml"), namespace="doomed")
        await api.resource("configmaps").create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
             "data": {"a": "b"}}, namespace="doomed")
        await wait_for_list(api.resource("pods"), lambda items: len(items) == 3,
                            namespace="doomed")
        await namespaces.delete("doomed")
        await wait_for_object(namespaces, "doomed", lambda ns: ns is None, timeout=20)
        for resource, group in (("pods", None), ("replicasets", "apps"), ("services", None),
                                ("configmaps", None), ("endpoints", None)):
            items = (await api.resource(resource, group).list(namespace="doomed"))["items"]
            assert items == [], resource
        kept = (await api.resource("namespaces").get("default"))
        assert meta.deletion_timestamp(kept) is None


async def test_new_namespace_gets_default_serviceaccount(api):
    async with RunningControllers(api, ["serviceaccount"]):
        await api.resource("namespaces").create({"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": "team-a"}})
        sa = await wait_for_object(api.resource("serviceaccounts"), "default",
                                   lambda o: o is not None, namespace="team-a")
        await api.resource("serviceaccounts").delete("default", namespace="team-a")
        again = await wait_for_object(api.resource("serviceaccounts"), "default",
                                      lambda o: o is not None and meta.uid(o) != meta.uid(sa),
                                      namespace="team-a")
        assert again is not None


async def test_root_ca_configmap_is_published(api, tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    async with RunningControllers(api, ["root-ca-cert-publisher"], root_ca_file=str(ca)):
        cm = await wait_for_object(api.resource("configmaps"), "kube-root-ca.crt",
                                   lambda o: o is not None, namespace="default")
        assert cm["data"]["ca.crt"] == ca.read_text()
        await api.resource("configmaps").patch("kube-root-ca.crt", {"data": {"ca.crt": "x"}},
                                               namespace="default", patch_type="merge")
        await wait_for_object(api.resource("configmaps"), "kube-root-ca.crt",
                              lambda o: o is not None and o["data"]["ca.crt"] == ca.read_text(),
                              namespace="default")


async def test_endpoints_and_slices_follow_ready_pods(api):
    async with RunningControllers(api, ["replicaset", "endpoint", "endpointslice",
                                        "garbagecollector"]), PodReadier(api):
        await api.resource("services").create(load_example("web-service.yaml"), namespace="default")
        await api.resource("replicasets", "apps").create(load_example("web-rs.yaml"),
                                                          namespace="default")

        def three_ready(ep):
            subsets = (ep or {}).get("subsets") or []
            return sum(len(s.get("addresses") or []) for s in subsets) == 3

        ep = await wait_for_object(api.resource("endpoints"), "web-service", three_ready,
                                   namespace="default")
        assert ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
        assert all(a["targetRef"]["kind"] == "Pod" for a in ep["subsets"][0]["addresses"])
        slices = api.resource("endpointslices", "discovery.k8s.io")
        [sl] = await wait_for_list(slices, lambda items: len(items) == 1 and len(
            items[0].get("endpoints") or []) == 3 and all(
            e["conditions"]["ready"] for e in items[0]["endpoints"]), namespace="default",
            label_selector="kubernetes.io/service-name=web-service")
        assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslice-controller.k8s.io"
        await api.resource("services").delete("web-service", namespace="default")
        await wait_for_object(api.resource("endpoints"), "web-service", lambda o: o is None,
                              namespace="default")
        await wait_for_list(slices, lambda items: not items, namespace="default",
                            label_selector="kubernetes.io/service-name=web-service")


async def test_service_selecting_nothing_has_empty_endpoints(api):
    async with RunningControllers(api, ["endpoint"]):
        svc = load_example("web-service.yaml")
        svc["spec"]["selector"] = {"app": "nobody"}
        await api.resource("services").create(svc, namespace="default")
        ep = await wait_for_object(api.resource("endpoints"), "web-service",
                                   lambda o: o is not None, namespace="default")
        assert not ep.get("subsets")


async def test_selectorless_service_is_mirrored_but_kubernetes_service_is_not(api):
    slices = api.resource("endpointslices", "discovery.k8s.io")
    async with RunningControllers(api, ["endpointslicemirroring", "garbagecollector"]):
        await api.resource("services").create({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
            "spec": {"ports": [{"port": 5432}]}}, namespace="default")
        await api.resource("endpoints").create({
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]},
            namespace="default")
        [sl] = await wait_for_list(slices, lambda items: len(items) == 1, namespace="default",
                                   label_selector="endpointslice.kubernetes.io/managed-by="
                                                  "endpointslicemirroring-controller.k8s.io")
        assert sl["metadata"]["labels"]["kubernetes.io/service-name"] == "db"
        assert sl["endpoints"][0]["addresses"] == ["192.0.2.10"]
        await api.resource("endpoints").delete("db", namespace="default")
        await wait_for_list(slices, lambda items: not items, namespace="default",
                            label_selector="kubernetes.io/service-name=db")
