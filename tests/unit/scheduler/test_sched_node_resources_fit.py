"""NodeResourcesFit: requests against allocatable minus requested; LeastAllocated score."""

from tinykube.scheduler.framework import CycleState, Code
from tinykube.scheduler.nodeinfo import PodInfo
from tinykube.scheduler.plugins.node_resources_fit import (NodeResourcesFit, least_allocated,
                                                           new)
from tinykube.scheduler.testutil import make_node, make_pod, node_info


def test_fits_and_insufficient_reasons():
    plugin = NodeResourcesFit()
    node = node_info(make_node("n", cpu="2", memory="4Gi", pods=2),
                     make_pod("a", cpu="1500m", memory="1Gi"))
    ok = PodInfo(make_pod("b", cpu="500m", memory="3Gi"))
    assert plugin.filter(CycleState(), ok, node) is None
    big = PodInfo(make_pod("c", cpu="600m", memory="4Gi"))
    status = plugin.filter(CycleState(), big, node)
    assert status.code == Code.UNSCHEDULABLE
    assert status.reasons == ("Insufficient cpu", "Insufficient memory")
    node.add_pod(ok)
    status = plugin.filter(CycleState(), PodInfo(make_pod("d")), node)
    assert status.reasons == ("Too many pods",)


def test_extended_resources_like_gpus():
    plugin = NodeResourcesFit()
    gpu_pod = PodInfo(make_pod("g", extra={"nvidia.com/gpu": "1"}))
    without = node_info(make_node("plain"))
    assert plugin.filter(CycleState(), gpu_pod, without).reasons == (
        "Insufficient nvidia.com/gpu",)
    with_gpu = node_info(make_node("gpu", extra={"nvidia.com/gpu": "1"}))
    assert plugin.filter(CycleState(), gpu_pod, with_gpu) is None
    with_gpu.add_pod(gpu_pod)
    assert plugin.filter(CycleState(), PodInfo(make_pod("h", extra={"nvidia.com/gpu": "1"})),
                         with_gpu).reasons == ("Insufficient nvidia.com/gpu",)


def test_least_allocated_prefers_emptier_nodes():
    plugin = NodeResourcesFit()
    pod = PodInfo(make_pod("p", cpu="1", memory="1Gi"))
    empty = node_info(make_node("e", cpu="4", memory="4Gi"))
    busy = node_info(make_node("b", cpu="4", memory="4Gi"), make_pod("x", cpu="2",
                                                                     memory="2Gi"))
    assert plugin.score(CycleState(), pod, empty) == 75
    assert plugin.score(CycleState(), pod, busy) == 25
    assert least_allocated(5, 4) == 0


def test_unset_requests_score_with_non_zero_defaults():
    plugin = NodeResourcesFit()
    node = node_info(make_node("n", cpu="1", memory="1000Mi"))
    # 100m of 1000m and 200Mi of 1000Mi used: (90 + 80) / 2
    assert plugin.score(CycleState(), PodInfo(make_pod("p")), node) == 85


def test_most_allocated_strategy_from_args():
    plugin = new({"scoringStrategy": {"type": "MostAllocated",
                                      "resources": [{"name": "cpu", "weight": 1}]}}, None)
    node = node_info(make_node("n", cpu="4"), make_pod("x", cpu="2"))
    assert plugin.score(CycleState(), PodInfo(make_pod("p", cpu="1")), node) == 75
