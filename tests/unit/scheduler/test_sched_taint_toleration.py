"""TaintToleration: hard taints filter, PreferNoSchedule taints score."""

from tinykube.scheduler.framework import Code, CycleState
from tinykube.scheduler.nodeinfo import PodInfo
from tinykube.scheduler.plugins.taint_toleration import TaintToleration
from tinykube.scheduler.testutil import make_node, make_pod, node_info

GPU_TAINT = {"key": "gpu", "value": "true", "effect": "NoSchedule"}


def test_untolerated_taint_message():
    status = TaintToleration().filter(CycleState(), PodInfo(make_pod()),
                                      node_info(make_node("n", taints=[GPU_TAINT])))
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) had untolerated taint {gpu: true}",)


def test_tolerations_equal_and_exists():
    node = node_info(make_node("n", taints=[GPU_TAINT]))
    equal = make_pod(tolerations=[{"key": "gpu", "operator": "Equal", "value": "true",
                                   "effect": "NoSchedule"}])
    exists = make_pod(tolerations=[{"operator": "Exists"}])
    wrong = make_pod(tolerations=[{"key": "gpu", "value": "false"}])
    plugin = TaintToleration()
    assert plugin.filter(CycleState(), PodInfo(equal), node) is None
    assert plugin.filter(CycleState(), PodInfo(exists), node) is None
    assert plugin.filter(CycleState(), PodInfo(wrong), node) is not None


def test_prefer_no_schedule_scores_lower():
    plugin = TaintToleration()
    pod = PodInfo(make_pod())
    soft = {"key": "spot", "effect": "PreferNoSchedule"}
    nodes = [node_info(make_node("clean")), node_info(make_node("soft", taints=[soft]))]
    state = CycleState()
    assert plugin.pre_score(state, pod, nodes) is None
    scores = {n.name: plugin.score(state, pod, n) for n in nodes}
    plugin.normalize_score(state, pod, scores)
    assert scores == {"clean": 100, "soft": 0}
    assert plugin.filter(state, pod, nodes[1]) is None
