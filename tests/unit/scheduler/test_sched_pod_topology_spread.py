"""PodTopologySpread: maxSkew filtering and ScheduleAnyway scoring."""

from tinykube.scheduler.testutil import Harness, make_node, make_pod

ZONE = "topology.kubernetes.io/zone"


def spread(when="DoNotSchedule", skew=1):
    return [{"maxSkew": skew, "topologyKey": ZONE, "whenUnsatisfiable": when,
             "labelSelector": {"matchLabels": {"app": "web"}}}]


def cluster(*placed):
    nodes = [make_node("a1", labels={ZONE: "a"}), make_node("b1", labels={ZONE: "b"}),
             make_node("nozone")]
    pods = [make_pod(f"p{i}", labels={"app": "web"}, node=n) for i, n in enumerate(placed)]
    return Harness(nodes, pods)


def test_skew_blocks_the_crowded_zone_and_missing_label():
    h = cluster("a1", "a1")
    result, _ = h.schedule(make_pod("new", labels={"app": "web"},
                                    topologySpreadConstraints=spread()))
    assert result.node == "b1"
    statuses = result.diagnosis.node_statuses
    assert statuses["a1"].reasons == ("node(s) didn't match pod topology spread constraints",)
    assert statuses["nozone"].reasons == (
        "node(s) didn't match pod topology spread constraints (missing required label)",)


def test_larger_max_skew_allows_it():
    h = cluster("a1")
    result, _ = h.schedule(make_pod("new", labels={"app": "web"},
                                    topologySpreadConstraints=spread(skew=2),
                                    nodeSelector={ZONE: "a"}))
    assert result.node == "a1"


def test_schedule_anyway_prefers_emptier_zone():
    h = cluster("a1", "a1", "b1")
    result, _ = h.schedule(make_pod("new", labels={"app": "web"},
                                    topologySpreadConstraints=spread("ScheduleAnyway")),
                           explain=True)
    scores = result.score_results
    assert scores["b1"]["PodTopologySpread"] > scores["a1"]["PodTopologySpread"]
    assert scores["nozone"]["PodTopologySpread"] == 0
