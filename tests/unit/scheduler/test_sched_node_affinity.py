"""NodeAffinity: nodeSelector, required terms (all operators), preferred weights."""

from tinykube.scheduler.framework import SKIP, Code, CycleState
from tinykube.scheduler.nodeinfo import PodInfo
from tinykube.scheduler.plugins.node_affinity import ERR_REASON_POD, NodeAffinity
from tinykube.scheduler.testutil import make_node, make_pod, node_info


def affinity(*terms, preferred=()):
    aff = {"nodeAffinity": {}}
    if terms:
        aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": list(terms)}
    if preferred:
        aff["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = list(preferred)
    return aff


def run_filter(pod, node):
    plugin = NodeAffinity()
    state = CycleState()
    info = PodInfo(pod)
    _, status = plugin.pre_filter(state, info, [])
    if status is SKIP:
        return None
    return plugin.filter(state, info, node_info(node))


def test_no_constraints_skips():
    assert NodeAffinity().pre_filter(CycleState(), PodInfo(make_pod()), [])[1] is SKIP


def test_node_selector():
    pod = make_pod(nodeSelector={"disk": "ssd"})
    assert run_filter(pod, make_node("a", labels={"disk": "ssd"})) is None
    status = run_filter(pod, make_node("b", labels={"disk": "hdd"}))
    assert status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == (ERR_REASON_POD,)


def test_operators_and_terms_are_ored():
    pod = make_pod(affinity=affinity(
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]},
                              {"key": "cores", "operator": "Gt", "values": ["8"]}]},
        {"matchExpressions": [{"key": "special", "operator": "Exists"}]}))
    assert run_filter(pod, make_node("a", labels={"zone": "z1", "cores": "16"})) is None
    assert run_filter(pod, make_node("b", labels={"zone": "z1", "cores": "4"})) is not None
    assert run_filter(pod, make_node("c", labels={"special": ""})) is None
    notin = make_pod(affinity=affinity(
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["z1"]},
                              {"key": "bad", "operator": "DoesNotExist"}]}))
    assert run_filter(notin, make_node("d", labels={"zone": "z2"})) is None
    assert run_filter(notin, make_node("e", labels={"zone": "z1"})) is not None
    assert run_filter(notin, make_node("f", labels={"bad": "1"})) is not None


def test_match_fields_pins_node_names():
    pod = make_pod(affinity=affinity(
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}))
    plugin = NodeAffinity()
    result, status = plugin.pre_filter(CycleState(), PodInfo(pod), [])
    assert status is None and result.node_names == {"a"}
    assert run_filter(pod, make_node("a")) is None
    assert run_filter(pod, make_node("b")) is not None


def test_preferred_terms_score_by_weight():
    pod = make_pod(affinity=affinity(preferred=[
        {"weight": 80, "preference": {"matchExpressions": [
            {"key": "zone", "operator": "In", "values": ["z1"]}]}},
        {"weight": 20, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]))
    plugin = NodeAffinity()
    state = CycleState()
    info = PodInfo(pod)
    assert plugin.pre_score(state, info, []) is None
    nodes = {"a": make_node("a", labels={"zone": "z1", "disk": "ssd"}),
             "b": make_node("b", labels={"disk": "ssd"}), "c": make_node("c")}
    scores = {n: plugin.score(state, info, node_info(o)) for n, o in nodes.items()}
    assert scores == {"a": 100, "b": 20, "c": 0}
    plugin.normalize_score(state, info, scores)
    assert scores == {"a": 100, "b": 20, "c": 0}
