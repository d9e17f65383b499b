"""The runtime: sampling size, round robin, messages, ties, explain, config parsing."""

from __future__ import annotations

import pytest

from tinykube.scheduler.config import ConfigError, load_config, parse_config, parse_duration
from tinykube.scheduler.framework import unschedulable
from tinykube.scheduler.runtime import (num_feasible_nodes_to_find, reasons_histogram,
                                        select_host)
from tinykube.scheduler.testutil import Harness, make_node, make_pod


def test_percentage_of_nodes_to_score():
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420  # 50% - 1000/125 = 42%
    assert num_feasible_nodes_to_find(5000) == 500  # 10%
    assert num_feasible_nodes_to_find(100_000) == 5000  # floor of 5%
    assert num_feasible_nodes_to_find(150) == 100  # never fewer than 100
    assert num_feasible_nodes_to_find(1000, 100) == 1000


def test_histogram_sorted_like_upstream():
    statuses = {"a": unschedulable("Insufficient cpu"), "b": unschedulable("Too many pods"),
                "c": unschedulable("Insufficient cpu")}
    assert reasons_histogram(statuses) == "1 Too many pods, 2 Insufficient cpu"


def test_select_host_breaks_ties_among_the_best():
    assert select_host({"a": 1, "b": 5, "c": 3}) == "b"
    winners = {select_host({"a": 5, "b": 5, "c": 1}) for _ in range(50)}
    assert winners == {"a", "b"}


def test_sampling_stops_early_and_rotates():
    h = Harness([make_node(f"n{i}") for i in range(1000)])
    from tinykube.scheduler.framework import CycleState
    from tinykube.scheduler.nodeinfo import PodInfo
    result, nxt = h.framework.find_nodes(CycleState(), PodInfo(make_pod()), 0)
    assert result.feasible == 420 and nxt == 420
    result, nxt = h.framework.find_nodes(CycleState(), PodInfo(make_pod()), 900)
    assert nxt == (900 + 420) % 1000


def test_no_nodes_message():
    result, _ = Harness().schedule(make_pod())
    assert result.node is None and result.message == "no nodes available to schedule pods"


def test_explain_lists_every_plugin_per_node():
    h = Harness([make_node("small", cpu="1"), make_node("big", cpu="8")])
    result, _ = h.schedule(make_pod(cpu="2"), explain=True)
    assert result.node == "big"
    assert result.filter_results["small"]["NodeResourcesFit"] == "Insufficient cpu"
    assert result.filter_results["big"]["NodeResourcesFit"] == "passed"
    assert set(result.score_results["big"]) >= {"NodeResourcesFit", "total"}


def test_parse_duration():
    assert parse_duration("1m30s", "x") == 90
    assert parse_duration("500ms", "x") == 0.5
    with pytest.raises(ConfigError):
        parse_duration("15 seconds", "leaseDuration")


def test_tutorial_configmap_and_profiles(tmp_path):
    cfg = load_config("examples/scheduler/kube-scheduler-config.yaml")
    le = cfg.leader_election
    assert (le.leader_elect, le.lease_duration, le.renew_deadline, le.retry_period,
            le.resource_name, le.resource_namespace) == (True, 15, 10, 2, "kube-scheduler",
                                                         "kube-system")
    cfg = parse_config({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
        "percentageOfNodesToScore": 30,
        "profiles": [{"schedulerName": "default-scheduler"},
                     {"schedulerName": "no-scoring", "plugins": {
                         "score": {"disabled": [{"name": "*"}],
                                   "enabled": [{"name": "NodeResourcesFit", "weight": 5}]},
                         "filter": {"disabled": [{"name": "TaintToleration"}]}},
                      "pluginConfig": [{"name": "NodeResourcesFit", "args": {
                          "scoringStrategy": {"type": "MostAllocated"}}}]}]})
    second = cfg.profiles[1]
    assert [(r.name, r.weight) for r in second.plugins["score"]] == [("NodeResourcesFit", 5)]
    assert "TaintToleration" not in [r.name for r in second.plugins["filter"]]
    assert second.plugin_config["NodeResourcesFit"]["scoringStrategy"]["type"] == \
        "MostAllocated"
    assert second.percentage_of_nodes_to_score == 30


@pytest.mark.parametrize("bad,message", [
    ({"apiVersion": "v9", "kind": "KubeSchedulerConfiguration"}, "apiVersion"),
    ({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
      "profiles": [{"plugins": {"filter": {"enabled": [{"name": "Nope"}]}}}]},
     'plugin "Nope" does not exist'),
    ({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
      "profiles": [{}, {}]}, "Duplicate value"),
    ({"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
      "leaderElection": {"leaseDuration": "5s", "renewDeadline": "10s"}}, "leaseDuration"),
])
def test_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(bad)


def test_fit_error_message_with_preemption_like_upstream():
    from tinykube.scheduler.framework import Diagnosis, unresolvable
    from tinykube.scheduler.runtime import fit_error_message
    diagnosis = Diagnosis(
        node_statuses={"a": unschedulable("Insufficient nvidia.com/gpu"),
                       "b": unresolvable("node(s) had untolerated taint "
                                         "{node-role.kubernetes.io/control-plane: }")},
        post_filter_msg="preemption: 0/2 nodes are available: 1 No preemption victims found "
                        "for incoming pod, 1 Preemption is not helpful for scheduling.")
    assert fit_error_message(2, diagnosis) == (
        "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated "
        "taint {node-role.kubernetes.io/control-plane: }. preemption: 0/2 nodes are "
        "available: 1 No preemption victims found for incoming pod, 1 Preemption is not "
        "helpful for scheduling..")
