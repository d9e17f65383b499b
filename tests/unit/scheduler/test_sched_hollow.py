"""Hollow node objects: the Node shape, taint parsing, pod status transitions."""

import pytest

from tinykube.kubelet.hollow import (NodeTemplate, node_object, node_pod_cidr, parse_taint,
                                     pod_ip, running_status, terminated_status)
from tinykube.scheduler.testutil import make_pod


def test_node_object_shape():
    node = node_object("hollow-node-3", 3, NodeTemplate(cpu="8", memory="32Gi", gpus=2,
                                                        labels={"gpu": "true"}))
    status = node["status"]
    assert status["capacity"] == {"cpu": "8", "memory": "32Gi", "pods": "110",
                                  "ephemeral-storage": "100Gi", "nvidia.com/gpu": "2"}
    assert status["allocatable"] == status["capacity"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions == {"MemoryPressure": ("False", "KubeletHasSufficientMemory"),
                          "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
                          "PIDPressure": ("False", "KubeletHasSufficientPID"),
                          "Ready": ("True", "KubeletReady")}
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "hollow-node-3"
    assert node["metadata"]["labels"]["gpu"] == "true"
    assert status["nodeInfo"]["kubeletVersion"].startswith("v1.32")
    assert {a["type"] for a in status["addresses"]} == {"InternalIP", "Hostname"}
    assert node["spec"]["podCIDR"] == "127.64.3.0/24"


def test_pod_ranges_stay_on_loopback():
    assert node_pod_cidr(0) == "127.64.0.0/24"
    assert node_pod_cidr(300) == "127.65.44.0/24"
    assert pod_ip("127.64.0.0/24", 0) == "127.64.0.1"
    assert pod_ip("127.64.0.0/24", 253) == "127.64.0.254"
    with pytest.raises(ValueError):
        node_pod_cidr(192 * 256)


def test_parse_taint():
    assert parse_taint("gpu=true:NoSchedule") == {"key": "gpu", "value": "true",
                                                  "effect": "NoSchedule"}
    assert parse_taint("spot:PreferNoSchedule") == {"key": "spot", "effect": "PreferNoSchedule"}
    for bad in ("gpu=true", "gpu:Sometimes", "=x:NoSchedule"):
        with pytest.raises(ValueError):
            parse_taint(bad)


def test_running_then_terminated():
    node = node_object("n", 0, NodeTemplate())
    pod = make_pod("p", cpu="1", restartPolicy="Never")
    running = running_status(pod, node, "127.64.0.1", "2026-01-01T00:00:00Z")
    assert running["phase"] == "Running" and running["podIP"] == "127.64.0.1"
    assert running["hostIP"] == "127.0.0.1"
    assert all(c["status"] == "True" for c in running["conditions"])
    assert running["containerStatuses"][0]["state"]["running"]
    done = terminated_status({**pod, "status": running}, 3, "2026-01-01T00:01:00Z")
    assert done["phase"] == "Failed"
    state = done["containerStatuses"][0]["state"]["terminated"]
    assert state["exitCode"] == 3 and state["reason"] == "Error"
    ok = terminated_status({**pod, "status": running}, 0, "2026-01-01T00:01:00Z")
    assert ok["phase"] == "Succeeded"
    always = make_pod("a")
    restarted = terminated_status({**always, "status": running}, 1, "2026-01-01T00:01:00Z")
    assert restarted.get("phase") == "Running"
    assert restarted["containerStatuses"][0]["restartCount"] == 1


def test_template_from_kubelet_style_capacity():
    from tinykube.kubelet.hollow import NodeTemplate
    tpl = NodeTemplate.from_capacity({"cpu": "2", "nvidia.com/gpu": 1, "example.com/fpga": "3"})
    assert tpl.capacity() == {"cpu": "2", "memory": "16Gi", "pods": "110",
                              "ephemeral-storage": "100Gi", "example.com/fpga": "3",
                              "nvidia.com/gpu": "1"}
