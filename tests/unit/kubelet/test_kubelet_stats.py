"""CPU rates of the summary API, and their metrics.k8s.io form."""

from __future__ import annotations

from tinykube.apiserver.metricsapi import pod_metrics, usage
from tinykube.kubelet.stats import MIN_WINDOW, Rates, node_cpu_ns, node_memory


def test_a_rate_is_taken_between_samples_at_least_a_window_apart():
    rates = Rates()
    # first seen: its average since it started (2 s of CPU in 4 s)
    assert rates.rate("c", 104.0, 2_000_000_000, since=100.0) == (500_000_000, 4.0)
    # too soon after: the last rate, and the sample it was taken from stays
    assert rates.rate("c", 104.0 + MIN_WINDOW / 2, 9_000_000_000, since=100.0) == (500_000_000, 4.0)
    # a full core over the 2 s since that sample
    assert rates.rate("c", 106.0, 4_000_000_000, since=100.0) == (1_000_000_000, 2.0)
    rates.keep_only({"other"})
    assert rates.last == {}


def test_node_counters_come_from_proc():
    assert node_cpu_ns() > 0
    memory = node_memory(0.0)
    assert memory["workingSetBytes"] > 0 and memory["availableBytes"] > 0
    assert memory["usageBytes"] >= memory["workingSetBytes"]  # free pages are fewer than available ones


def test_metrics_are_in_nanocores_and_kibibytes():
    stats = {"cpu": {"time": "2026-12-02T10:00:00Z", "usageNanoCores": 250_000_000, "window": "2.000s"},
             "memory": {"workingSetBytes": 3 << 20}, "containers": [
                 {"name": "c", "cpu": {"usageNanoCores": 250_000_000}, "memory": {"workingSetBytes": 3 << 20}}]}
    assert usage(stats) == {"cpu": "250000000n", "memory": "3072Ki"}
    pod = {"metadata": {"name": "p", "namespace": "default", "labels": {"app": "a"}}}
    out = pod_metrics(pod, stats)
    assert out["kind"] == "PodMetrics" and out["window"] == "2.000s" and out["timestamp"] == "2026-12-02T10:00:00Z"
    assert out["containers"] == [{"name": "c", "usage": {"cpu": "250000000n", "memory": "3072Ki"}}]


def test_metrics_tables_have_metrics_servers_columns():
    from tinykube.api import kinds
    from tinykube.api.tables import to_table

    pod = {"metadata": {"name": "p", "namespace": "default"}, "window": "1.000s", "containers": [
        {"name": "a", "usage": {"cpu": "250000000n", "memory": "3072Ki"}},
        {"name": "b", "usage": {"cpu": "5n", "memory": "1Ki"}}]}
    table = to_table(kinds.lookup("metrics.k8s.io", "v1beta1", "pods"), [pod])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "CPU", "Memory", "Window"]
    assert table["rows"][0]["cells"] == ["p", "250000005n", "3073Ki", "1.000s"]
