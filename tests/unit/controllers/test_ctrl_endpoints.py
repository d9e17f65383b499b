"""Endpoints and EndpointSlice controllers from Services and their pods."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.controllers.endpoints import EndpointsController, build_subsets
from tinykube.controllers.endpointslice import (CONTROLLER_NAME, EndpointSliceController,
                                                desired_slices)
from tinykube.controllers.testutil import make_context, new_pod, new_service, with_ip


def web_pods():
    ready = with_ip(new_pod("web-a", labels={"app": "web"}, node="n1", phase="Running",
                            ready=True), "10.244.1.5")
    unready = with_ip(new_pod("web-b", labels={"app": "web"}, node="n2", phase="Running"),
                      "10.244.2.7")
    no_ip = new_pod("web-c", labels={"app": "web"})
    other = with_ip(new_pod("db", labels={"app": "db"}, phase="Running", ready=True),
                    "10.244.1.9")
    return [ready, unready, no_ip, other]


def test_subsets_split_ready_and_not_ready():
    svc = new_service("web", selector={"app": "web"})
    pods = [p for p in web_pods() if meta.labels(p)["app"] == "web"]
    [subset] = build_subsets(svc, pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.244.1.5"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.244.2.7"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    addr = subset["addresses"][0]
    assert addr["nodeName"] == "n1"
    assert addr["targetRef"] == {"kind": "Pod", "namespace": "default", "name": "web-a",
                                 "uid": meta.uid(pods[0])}


def test_named_target_port_resolves_per_pod():
    svc = new_service("web", selector={"app": "web"},
                      ports=[{"name": "http", "port": 80, "targetPort": "web",
                              "protocol": "TCP"}])
    a = with_ip(new_pod("a", labels={"app": "web"}, ready=True, phase="Running"), "10.0.0.1")
    b = with_ip(new_pod("b", labels={"app": "web"}, ready=True, phase="Running"), "10.0.0.2")
    c = with_ip(new_pod("c", labels={"app": "web"}, ready=True, phase="Running"), "10.0.0.3")
    a["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": 8080}]
    b["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": 9090}]
    subsets = build_subsets(svc, [a, b, c])  # c has no port named web: left out
    assert sorted((s["addresses"][0]["ip"], s["ports"][0]["port"]) for s in subsets) == [
        ("10.0.0.1", 8080), ("10.0.0.2", 9090)]


def test_hostname_and_publish_not_ready():
    svc = new_service("db", selector={"app": "db"}, cluster_ip="None")
    svc["spec"]["publishNotReadyAddresses"] = True
    pod = with_ip(new_pod("db-0", labels={"app": "db"}, phase="Running"), "10.0.0.4")
    pod["spec"]["hostname"], pod["spec"]["subdomain"] = "db-0", "db"
    [subset] = build_subsets(svc, [pod])
    assert subset["addresses"][0]["hostname"] == "db-0"
    assert "notReadyAddresses" not in subset


async def test_endpoints_sync_creates_updates_and_deletes():
    ctx, client, informers, _ = make_context()
    ctrl = EndpointsController(ctx)
    svc = new_service("web", selector={"app": "web"})
    informers["services"].seed(svc)
    informers["pods"].seed(*web_pods())
    await ctrl.sync("default/web")
    ep = client.objects["endpoints"]["default/web"]
    assert len(ep["subsets"]) == 1 and len(ep["subsets"][0]["addresses"]) == 1
    informers.mirror(client, "endpoints")
    await ctrl.sync("default/web")
    assert len(client.writes("endpoints")) == 1  # unchanged: no write
    informers["services"].delete(svc)
    await ctrl.sync("default/web")
    assert "default/web" not in client.objects["endpoints"]


async def test_selector_matching_nothing_gives_empty_endpoints():
    ctx, client, informers, _ = make_context()
    ctrl = EndpointsController(ctx)
    informers["services"].seed(new_service("lonely", selector={"app": "nothing"}))
    await ctrl.sync("default/lonely")
    ep = client.objects["endpoints"]["default/lonely"]
    assert not ep.get("subsets")


async def test_service_without_selector_is_left_alone():
    ctx, client, informers, _ = make_context()
    ctrl = EndpointsController(ctx)
    informers["services"].seed(new_service("manual"))
    await ctrl.sync("default/manual")
    assert client.writes() == []


async def test_pod_change_enqueues_matching_services():
    ctx, client, informers, _ = make_context()
    ctrl = EndpointsController(ctx)
    informers["services"].seed(new_service("web", selector={"app": "web"}),
                               new_service("db", selector={"app": "db"}))
    informers["pods"].add(new_pod("x", labels={"app": "web"}))
    assert ctrl.queue.len() == 1 and await ctrl.queue.get() == "default/web"


def test_slice_conditions_include_terminating():
    svc = new_service("web", selector={"app": "web"})
    ready, unready, _, _ = web_pods()
    ready["metadata"]["deletionTimestamp"] = meta.now()
    [(ports, endpoints, family)] = desired_slices(svc, [ready, unready])
    assert family == "IPv4" and ports[0]["port"] == 8080
    conds = {e["targetRef"]["name"]: e["conditions"] for e in endpoints}
    assert conds["web-a"] == {"ready": False, "serving": True, "terminating": True}
    assert conds["web-b"] == {"ready": False, "serving": False, "terminating": False}


async def test_endpointslice_sync_creates_owned_labelled_slice_once():
    ctx, client, informers, _ = make_context()
    ctrl = EndpointSliceController(ctx)
    svc = new_service("web", selector={"app": "web"})
    informers["services"].seed(svc)
    informers["pods"].seed(*web_pods())
    await ctrl.sync("default/web")
    [sl] = client.objects["endpointslices"].values()
    assert sl["metadata"]["name"].startswith("web-")
    assert sl["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == CONTROLLER_NAME
    assert sl["metadata"]["ownerReferences"][0]["uid"] == meta.uid(svc)
    assert len(sl["endpoints"]) == 2
    await ctrl.sync("default/web")  # cache has not seen the slice: no second create
    assert len(client.objects["endpointslices"]) == 1
    informers.mirror(client, "endpointslices")
    await ctrl.sync("default/web")
    assert len(client.writes("endpointslices")) == 1


async def test_endpointslice_placeholder_when_nothing_selected():
    ctx, client, informers, _ = make_context()
    ctrl = EndpointSliceController(ctx)
    informers["services"].seed(new_service("lonely", selector={"app": "none"}))
    await ctrl.sync("default/lonely")
    [sl] = client.objects["endpointslices"].values()
    assert sl["endpoints"] == [] and sl["addressType"] == "IPv4"


def test_slices_are_capped_at_100_endpoints():
    svc = new_service("big", selector={"app": "big"})
    pods = [with_ip(new_pod(f"p{i:03d}", labels={"app": "big"}, phase="Running", ready=True),
                    f"10.1.{i // 250}.{i % 250 + 1}") for i in range(250)]
    assert [len(e) for _, e, _ in desired_slices(svc, pods)] == [100, 100, 50]


async def test_selectorless_service_endpoints_are_mirrored_into_slices():
    from tinykube.controllers.endpointslicemirroring import (CONTROLLER_NAME as MIRROR,
                                                             EndpointSliceMirroringController)
    ctx, client, informers, _ = make_context()
    ctrl = EndpointSliceMirroringController(ctx)
    svc = new_service("ext")  # no selector
    ep = {"apiVersion": "v1", "kind": "Endpoints",
          "metadata": {"name": "ext", "namespace": "default", "uid": meta.new_uid()},
          "subsets": [{"addresses": [{"ip": "192.0.2.10"}],
                       "notReadyAddresses": [{"ip": "192.0.2.11"}],
                       "ports": [{"port": 5432, "protocol": "TCP"}]}]}
    informers["services"].seed(svc)
    informers["endpoints"].seed(ep)
    await ctrl.sync("default/ext")
    [sl] = client.objects["endpointslices"].values()
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == MIRROR
    assert sl["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert [(e["addresses"][0], e["conditions"]["ready"]) for e in sl["endpoints"]] == [
        ("192.0.2.10", True), ("192.0.2.11", False)]
    assert sl["ports"] == [{"port": 5432, "protocol": "TCP", "name": ""}]
    # a Service with a selector is the endpointslice controller's, not mirrored
    informers.mirror(client, "endpointslices")
    informers["services"].seed(new_service("ext", selector={"app": "x"}))
    await ctrl.sync("default/ext")
    assert not client.objects["endpointslices"]
