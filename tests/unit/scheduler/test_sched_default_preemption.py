"""DefaultPreemption: victims by priority, reprieve, and the failure messages."""

from tinykube.scheduler.testutil import Harness, make_node, make_pod


def test_preempts_the_lowest_priority_needed_and_nominates():
    h = Harness([make_node("n1", cpu="2"), make_node("n2", cpu="2")],
                [make_pod("low", cpu="1", priority=1, node="n1"),
                 make_pod("low2", cpu="1", priority=1, node="n1"),
                 make_pod("mid", cpu="2", priority=50, node="n2")])
    pod = make_pod("vip", cpu="1", priority=100)
    result, state = h.schedule(pod)
    assert result.node is None
    from tinykube.scheduler.nodeinfo import PodInfo
    post, status = h.framework.run_post_filter(state, PodInfo(pod), result.diagnosis)
    assert status is None and post.nominated_node_name == "n1"
    assert h.spawned == ["preempt-default/vip"]
    plugin = h.plugin("DefaultPreemption")
    victims = plugin.select_victims(state, PodInfo(pod), h.cache.nodes["n1"])
    assert len(victims) == 1  # one 1-CPU pod is enough; the other is reprieved


def test_not_helpful_message():
    h = Harness([make_node("n1", labels={"x": "y"})])
    pod = make_pod("p", nodeSelector={"x": "z"})
    result, state = h.schedule(pod)
    from tinykube.scheduler.nodeinfo import PodInfo
    _, status = h.framework.run_post_filter(state, PodInfo(pod), result.diagnosis)
    assert status.message == ("preemption: 0/1 nodes are available: 1 Preemption is not "
                              "helpful for scheduling.")


def test_no_victims_and_never_policy():
    h = Harness([make_node("n1", cpu="1")], [make_pod("same", cpu="1", node="n1")])
    from tinykube.scheduler.nodeinfo import PodInfo
    pod = make_pod("p", cpu="1")
    result, state = h.schedule(pod)
    _, status = h.framework.run_post_filter(state, PodInfo(pod), result.diagnosis)
    assert status.message == ("preemption: 0/1 nodes are available: 1 No preemption victims "
                              "found for incoming pod.")
    never = make_pod("n", cpu="1", priority=10, preemptionPolicy="Never")
    result, state = h.schedule(never)
    _, status = h.framework.run_post_filter(state, PodInfo(never), result.diagnosis)
    assert status.message == "not eligible due to preemptionPolicy=Never."
