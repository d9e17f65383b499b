"""The model's fast constructors build the same values as the plain dataclass/NamedTuple ones."""

from __future__ import annotations

from tinykube.proxy.changes import ChangeTracker
from tinykube.proxy.model import Endpoint, ServicePort, Snapshot, endpoints_for, merge_slices, service_ports
from tinykube.testing.services import endpoint_slice, service


def test_service_ports_equal_dataclass_built_values() -> None:
    svc = service("lb", "10.96.0.4", type="LoadBalancer", externalIPs=["1.1.1.1"],
                  externalTrafficPolicy="Local", sessionAffinity="ClientIP",
                  ports=[{"name": "h", "port": "80", "nodePort": "30080", "protocol": "tcp"},
                         {"port": 53, "protocol": "UDP", "nodePort": 30053}])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "2.2.2.2"}, {"hostname": "x"}]}}
    common = dict(namespace="default", name="lb", cluster_ip="10.96.0.4", external_ips=("1.1.1.1",),
                  load_balancer_ips=("2.2.2.2",), affinity_timeout=10800, external_traffic_local=True)
    expected = [ServicePort(port_name="h", protocol="TCP", port=80, node_port=30080, **common),  # type: ignore[arg-type]
                ServicePort(port_name="", protocol="UDP", port=53, node_port=30053, **common)]  # type: ignore[arg-type]
    got = service_ports(svc)
    assert got == expected
    assert [hash(p) for p in got] == [hash(p) for p in expected]
    assert [repr(p) for p in got] == [repr(p) for p in expected]
    assert [p.key for p in got] == [p.key for p in expected] == ["default/lb:h", "default/lb"]
    assert all(type(p) is ServicePort and type(p.port) is int for p in got)
    # ClusterIP services have no node ports, whatever the spec says
    assert service_ports(service("c", "10.96.0.5", ports=[{"port": 1, "nodePort": 3}]))[0].node_port == 0


def test_merge_slices_dedupes_sorts_and_reads_conditions() -> None:
    slices = [
        endpoint_slice("a", ["10.1.0.2", "10.1.0.1", "10.1.0.1"]),
        endpoint_slice("a", ["10.1.0.3", "10.1.0.1"], name="a-2", ready=[False, True]),
        {"addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": [{"addresses": ["10.1.0.9"], "zone": "z", "nodeName": "n",
                        "conditions": {"ready": False, "serving": True, "terminating": True}},
                       {"addresses": ["10.1.0.8"]}]},
    ]
    merged = merge_slices("default/a", slices)
    assert list(merged) == ["default/a:http\0TCP"]
    assert merged["default/a:http\0TCP"] == (
        Endpoint("10.1.0.1", 8080), Endpoint("10.1.0.2", 8080), Endpoint("10.1.0.3", 8080, False, False),
        Endpoint("10.1.0.8", 8080), Endpoint("10.1.0.9", 8080, False, True, True, "n", "z"))
    assert all(type(e) is Endpoint for e in merged["default/a:http\0TCP"])


def test_tracker_fold_matches_endpoints_for() -> None:
    tracker, snap = ChangeTracker(), Snapshot()
    svc = service("a", "10.96.0.1", ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}])
    slc = endpoint_slice("a", ["10.1.0.1"], ports=[{"name": "http", "port": 8080}, {"name": "dns", "port": 53}])
    tracker.service_updated(svc)
    tracker.slice_updated(slc)
    assert tracker.apply(snap).port_keys == {"default/a:http", "default/a:dns"}
    merged = merge_slices("default/a", [slc])
    for port in service_ports(svc):
        assert snap.services[port.key] == port
        assert snap.endpoints[port.key] == endpoints_for(port, merged)
    assert snap.endpoints["default/a:http"] == (Endpoint("10.1.0.1", 8080),)
    assert snap.endpoints["default/a:dns"] == ()  # the slice's dns port is TCP
