"""InterPodAffinity through the whole filter/score pipeline over a cache."""

from tinykube.scheduler.testutil import Harness, make_node, make_pod

ZONE = "topology.kubernetes.io/zone"


def nodes():
    return [make_node("a1", labels={ZONE: "a"}), make_node("a2", labels={ZONE: "a"}),
            make_node("b1", labels={ZONE: "b"})]


def anti(app, key="kubernetes.io/hostname"):
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}


def aff(app, key=ZONE):
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}]}}


def test_required_anti_affinity_by_zone():
    h = Harness(nodes(), [make_pod("web-0", labels={"app": "web"}, node="a1")])
    result, _ = h.schedule(make_pod("web-1", labels={"app": "web"}, affinity=anti("web", ZONE)))
    assert result.node == "b1"
    statuses = result.diagnosis.node_statuses
    assert statuses["a1"].reasons == ("node(s) didn't match pod anti-affinity rules",)
    assert statuses["a2"].reasons == ("node(s) didn't match pod anti-affinity rules",)


def test_existing_pods_anti_affinity_repels_newcomers():
    h = Harness(nodes(), [make_pod("db", labels={"app": "db"}, node="b1",
                                   affinity=anti("web", ZONE))])
    result, _ = h.schedule(make_pod("web", labels={"app": "web"}))
    assert result.node in ("a1", "a2")
    assert result.diagnosis.node_statuses["b1"].reasons == (
        "node(s) didn't satisfy existing pods anti-affinity rules",)


def test_required_affinity_follows_the_target_and_first_pod_rule():
    h = Harness(nodes(), [make_pod("cache", labels={"app": "cache"}, node="b1")])
    result, _ = h.schedule(make_pod("web", labels={"app": "web"}, affinity=aff("cache")))
    assert result.node == "b1"
    lonely, _ = h.schedule(make_pod("x", labels={"app": "x"}, affinity=aff("nothing")))
    assert lonely.node is None
    assert lonely.message == "0/3 nodes are available: 3 node(s) didn't match pod affinity rules."
    first, _ = h.schedule(make_pod("self", labels={"app": "self"}, affinity=aff("self")))
    assert first.node is not None  # matches its own term: the first of its group


def test_anti_affinity_on_hostname_spreads_one_per_node():
    h = Harness(nodes())
    placed = []
    for i in range(4):
        pod = make_pod(f"w{i}", labels={"app": "w"}, affinity=anti("w"))
        result, _ = h.schedule(pod)
        placed.append(result.node)
        if result.node:
            h.cache.add_pod({**pod, "spec": {**pod["spec"], "nodeName": result.node}})
    assert sorted(placed[:3]) == ["a1", "a2", "b1"] and placed[3] is None


def test_preferred_affinity_scores_matching_zone():
    h = Harness(nodes(), [make_pod("cache", labels={"app": "cache"}, node="a1")])
    pod = make_pod("web", affinity={"podAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {
                "app": "cache"}}, "topologyKey": ZONE}}]}})
    result, _ = h.schedule(pod, explain=True)
    scores = result.score_results
    assert scores["a1"]["InterPodAffinity"] == scores["a2"]["InterPodAffinity"] == 200
    assert scores["b1"]["InterPodAffinity"] == 0
