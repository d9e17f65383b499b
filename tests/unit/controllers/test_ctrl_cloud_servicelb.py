"""The cloud controller manager's service LB controller and address pool."""

from __future__ import annotations

import pytest

from tinykube.api import meta
from tinykube.cloud.manager import CloudControllerManagerConfig
from tinykube.cloud.servicelb import FINALIZER, AddressPool, ServiceLBController, parse_range
from tinykube.controllers.testutil import make_context, new_service


def test_parse_range():
    assert parse_range("172.18.255.200-172.18.255.202") == [
        "172.18.255.200", "172.18.255.201", "172.18.255.202"]
    assert parse_range("10.0.0.5-6") == ["10.0.0.5", "10.0.0.6"]
    assert parse_range("192.168.9.0/30") == ["192.168.9.1", "192.168.9.2"]
    with pytest.raises(ValueError):
        parse_range("10.0.0.9-10.0.0.1")


def test_pool_prefers_requested_address_and_reuses_released():
    pool = AddressPool(["10.0.0.1", "10.0.0.2"])
    assert pool.allocate("a", "10.0.0.2") == "10.0.0.2"
    assert pool.allocate("a") == "10.0.0.2"  # idempotent
    assert pool.allocate("b", "10.0.0.2") == "10.0.0.1"  # taken: next free
    assert pool.allocate("c") is None
    pool.release("a")
    assert pool.allocate("c") == "10.0.0.2"


def lb_service(name, **spec):
    svc = new_service(name, selector={"app": name})
    svc["spec"].update({"type": "LoadBalancer", **spec})
    return svc


async def test_assigns_ingress_and_finalizer_then_releases():
    ctx, client, informers, recorder = make_context(CloudControllerManagerConfig())
    ctrl = ServiceLBController(ctx, ["172.18.255.200", "172.18.255.201"])
    svc = lb_service("web")
    client.seed("services", svc)
    informers.mirror(client, "services")
    await ctrl.sync("default/web")
    informers.mirror(client, "services")
    stored = client.objects["services"]["default/web"]
    assert FINALIZER in stored["metadata"]["finalizers"]
    assert stored["status"]["loadBalancer"]["ingress"] == [{"ip": "172.18.255.200",
                                                            "ipMode": "VIP"}]
    assert ("Normal", "EnsuredLoadBalancer", "Ensured load balancer") in recorder.events
    stored["spec"]["type"] = "ClusterIP"
    informers.mirror(client, "services")
    await ctrl.sync("default/web")
    stored = client.objects["services"]["default/web"]
    assert not stored["status"]["loadBalancer"]
    assert FINALIZER not in (stored["metadata"].get("finalizers") or [])
    assert ctrl.pool.holder("default/web") is None


async def test_load_balancer_class_is_not_ours():
    ctx, client, informers, _ = make_context(CloudControllerManagerConfig())
    ctrl = ServiceLBController(ctx, ["172.18.255.200"])
    svc = lb_service("other", loadBalancerClass="example.com/lb")
    client.seed("services", svc)
    informers.mirror(client, "services")
    await ctrl.sync("default/other")
    assert client.writes() == []
    assert meta.finalizers(client.objects["services"]["default/other"]) == []
