"""Choosing the container and the kubelet URL for pods/log and pods/exec."""

import pytest
from multidict import MultiDict

from tinykube.api.errors import ApiError
from tinykube.apiserver import nodeproxy


def _pod(*containers, init=(), annotations=None, node="node-1"):
    return {"metadata": {"name": "web", "namespace": "ns", "annotations": annotations or {}},
            "spec": {"nodeName": node, "containers": [{"name": c} for c in containers],
                     "initContainers": [{"name": c} for c in init]}}


def test_single_container_is_the_default():
    assert nodeproxy.pick_container(_pod("app"), "") == "app"


def test_default_container_annotation_wins():
    pod = _pod("app", "sidecar",
               annotations={nodeproxy.DEFAULT_CONTAINER_ANNOTATION: "sidecar"})
    assert nodeproxy.pick_container(pod, "") == "sidecar"


def test_ambiguous_and_unknown_containers_are_400s():
    with pytest.raises(ApiError) as err:
        nodeproxy.pick_container(_pod("a", "b", init=("setup",)), "")
    assert err.value.code == 400
    assert err.value.message == ("a container name must be specified for pod web, choose one "
                                 "of: [a b] or one of the init containers: [setup]")
    with pytest.raises(ApiError, match="container c is not valid for pod web"):
        nodeproxy.pick_container(_pod("a"), "c")
    assert nodeproxy.pick_container(_pod("a", init=("setup",)), "setup") == "setup"


def test_node_address_prefers_internal_ip():
    node = {"metadata": {"name": "n"}, "status": {"addresses": [
        {"type": "Hostname", "address": "n"}, {"type": "ExternalIP", "address": "1.2.3.4"},
        {"type": "InternalIP", "address": "10.0.0.5"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}}}}
    assert nodeproxy.node_address(node) == "10.0.0.5"
    assert nodeproxy.kubelet_port(node) == 11250
    assert nodeproxy.kubelet_port({"status": {}}) == 10250
    with pytest.raises(ApiError):
        nodeproxy.node_address({"metadata": {"name": "n"}, "status": {}})


def test_kubelet_urls_carry_only_kubelet_options():
    query = MultiDict([("follow", "true"), ("container", "app"), ("tailLines", "5"),
                       ("pretty", "1")])
    assert nodeproxy.log_url("https://h:1", _pod("app"), "app", query) == \
        "https://h:1/containerLogs/ns/web/app?follow=true&tailLines=5"
    query = MultiDict([("command", "sh"), ("command", "-c"), ("command", "echo hi"),
                       ("stdout", "true"), ("container", "app")])
    assert nodeproxy.stream_url("https://h:1", "exec", _pod("app"), "app", query) == \
        "https://h:1/exec/ns/web/app?command=sh&command=-c&command=echo+hi&stdout=true"
    ports = MultiDict([("ports", "80"), ("ports", "443")])
    assert nodeproxy.stream_url("https://h:1", "portforward", _pod("app"), "", ports) == \
        "https://h:1/portForward/ns/web?port=80&port=443"


def test_unscheduled_pod_has_no_kubelet():
    with pytest.raises(ApiError) as err:
        nodeproxy.kubelet_base(object(), _pod("app", node=""))
    assert (err.value.code, err.value.message) == (400, "pod web does not have a host assigned")
