"""Pod helpers: readiness, conditions, effective requests, tolerations."""

from fractions import Fraction

import pytest

from tinykube.api import pods


def _pod(**spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "d"}, "spec": spec}


def _c(name: str, requests=None, limits=None, **kw) -> dict:
    res = {}
    if requests:
        res["requests"] = requests
    if limits:
        res["limits"] = limits
    return {"name": name, "image": "x", "resources": res, **kw}


def test_phase_ready_terminal() -> None:
    pod = _pod()
    assert pods.phase(pod) == "Pending" and not pods.is_ready(pod) and not pods.is_terminal(pod)
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert pods.is_ready(pod)
    pod["status"]["phase"] = "Succeeded"
    assert pods.is_terminal(pod) and not pods.is_active(pod)


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    status: dict = {}
    assert pods.set_condition(status, {"type": "Ready", "status": "False",
                                       "lastTransitionTime": "2024-01-01T00:00:00Z"})
    assert not pods.set_condition(status, {"type": "Ready", "status": "False",
                                           "lastTransitionTime": "2025-01-01T00:00:00Z"})
    assert status["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    assert pods.set_condition(status, {"type": "Ready", "status": "False", "reason": "X"})
    assert status["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    assert pods.set_condition(status, {"type": "Ready", "status": "True"})
    assert status["conditions"][0]["lastTransitionTime"] != "2024-01-01T00:00:00Z"
    assert len(status["conditions"]) == 1
    assert pods.condition({"status": status}, "Ready")["status"] == "True"


def test_pod_requests_sums_containers_and_counts_pods() -> None:
    pod = _pod(containers=[_c("a", {"cpu": "100m", "memory": "64Mi"}),
                           _c("b", None, {"cpu": "1", "nvidia.com/gpu": "2"})])
    assert pods.pod_requests(pod) == {"cpu": Fraction(11, 10), "memory": 64 * 2**20,
                                      "nvidia.com/gpu": 2, "pods": 1}
    assert "pods" not in pods.pod_requests(pod, include_pods=False)


def test_pod_requests_takes_init_container_max_and_overhead() -> None:
    pod = _pod(containers=[_c("a", {"cpu": "500m", "ephemeral-storage": "1Gi"})],
               initContainers=[_c("i", {"cpu": "2"})], overhead={"cpu": "10m"})
    assert pods.pod_requests(pod)["cpu"] == Fraction(201, 100)
    assert pods.pod_requests(pod)["ephemeral-storage"] == 2**30


def test_pod_requests_with_sidecars() -> None:
    pod = _pod(containers=[_c("a", {"cpu": "1"})],
               initContainers=[_c("i", {"cpu": "1"}),
                               _c("s", {"cpu": "500m"}, restartPolicy="Always"),
                               _c("j", {"cpu": "1800m"})])
    # sidecar runs alongside: 1 + 0.5; init step j runs with the sidecar: 1.8 + 0.5.
    assert pods.pod_requests(pod)["cpu"] == Fraction(23, 10)


def test_non_zero_requests_defaults() -> None:
    assert pods.non_zero_requests(_pod(containers=[_c("a")])) == (100, 200 * 2**20)


@pytest.mark.parametrize("containers,want", [
    ([_c("a")], "BestEffort"),
    ([_c("a", {"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([_c("a", None, {"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([_c("a", {"cpu": "1"})], "Burstable"),
    ([_c("a", {"cpu": "1", "memory": "1Gi"}, {"cpu": "2", "memory": "1Gi"})], "Burstable"),
])
def test_qos_class(containers: list, want: str) -> None:
    assert pods.qos_class(_pod(containers=containers)) == want


TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.mark.parametrize("toleration,want", [
    ({"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, True),
    ({"key": "dedicated", "value": "gpu"}, True),
    ({"key": "dedicated", "value": "cpu"}, False),
    ({"key": "dedicated", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),
    ({"operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "other", "operator": "Exists"}, False),
    ({"key": "dedicated", "operator": "Bogus"}, False),
])
def test_tolerates(toleration: dict, want: bool) -> None:
    assert pods.tolerates([toleration], TAINT) is want


def test_untolerated_taints_filters_by_effect() -> None:
    taints = [TAINT, {"key": "soft", "effect": "PreferNoSchedule"}]
    assert pods.untolerated_taints([], taints) == [TAINT]
    assert pods.untolerated_taints([{"operator": "Exists"}], taints) == []


def test_container_helpers() -> None:
    pod = _pod(containers=[_c("a"), _c("b")], initContainers=[_c("i")])
    pod["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "b"}
    pod["status"] = {"containerStatuses": [{"name": "a", "restartCount": 2},
                                           {"name": "b", "restartCount": 1}]}
    assert [c["name"] for c in pods.all_containers(pod)] == ["i", "a", "b"]
    assert pods.container(pod, "i")["name"] == "i" and pods.container(pod, "zz") is None
    assert pods.container_status(pod, "b")["restartCount"] == 1
    assert pods.restart_count(pod) == 3
    assert pods.default_container_name(pod) == "b"
