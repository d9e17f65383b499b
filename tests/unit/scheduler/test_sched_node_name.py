"""NodeName and NodeUnschedulable and NodePorts: the one-rule filters."""

from tinykube.scheduler.framework import SKIP, CycleState
from tinykube.scheduler.nodeinfo import PodInfo
from tinykube.scheduler.plugins.node_name import ERR_REASON, NodeName
from tinykube.scheduler.plugins.node_ports import NodePorts
from tinykube.scheduler.plugins.node_unschedulable import NodeUnschedulable
from tinykube.scheduler.testutil import make_node, make_pod, node_info


def test_node_name():
    plugin = NodeName()
    assert plugin.pre_filter(CycleState(), PodInfo(make_pod()), [])[1] is SKIP
    pinned = PodInfo(make_pod(node="a"))
    assert plugin.pre_filter(CycleState(), pinned, [])[0].node_names == {"a"}
    assert plugin.filter(CycleState(), pinned, node_info(make_node("a"))) is None
    assert plugin.filter(CycleState(), pinned, node_info(make_node("b"))).reasons == (
        ERR_REASON,)


def test_node_unschedulable():
    cordoned = node_info(make_node("n", unschedulable=True))
    plugin = NodeUnschedulable()
    assert plugin.filter(CycleState(), PodInfo(make_pod()), cordoned).reasons == (
        "node(s) were unschedulable",)
    tolerant = make_pod(tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                      "operator": "Exists", "effect": "NoSchedule"}])
    assert plugin.filter(CycleState(), PodInfo(tolerant), cordoned) is None


def test_node_ports_conflict():
    port = [{"containerPort": 80, "hostPort": 8080}]
    node = node_info(make_node("n"), make_pod("a", ports=port))
    plugin = NodePorts()
    pod = PodInfo(make_pod("b", ports=port))
    assert plugin.pre_filter(CycleState(), pod, [])[1] is None
    assert plugin.filter(CycleState(), pod, node).reasons == (
        "node(s) didn't have free ports for the requested pod ports",)
    other = PodInfo(make_pod("c", ports=[{"containerPort": 80, "hostPort": 9090}]))
    assert plugin.filter(CycleState(), other, node) is None
