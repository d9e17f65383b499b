import pytest

from tinykube.kubelet.config import ConfigError, KubeletConfig, apply_configuration, load_file, parse_duration

TUTORIAL = """
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntime: docker
maxPods: 110
podPidsLimit: 4096
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
cgroupDriver: {driver}
nodeStatusUpdateFrequency: 1m30s
authentication:
  webhook:
    enabled: true
authorization:
  mode: Webhook
"""


def test_tutorial_configuration_with_cgroupfs(tmp_path):
    path = tmp_path / "kubelet-config.yaml"
    path.write_text(TUTORIAL.format(driver="cgroupfs"))
    cfg = KubeletConfig(node_name="n")
    warnings = load_file(cfg, str(path))
    assert warnings == ['unknown field "containerRuntime"']
    assert cfg.cluster_dns == ["10.96.0.10"] and cfg.cluster_domain == "cluster.local"
    assert cfg.max_pods == 110 and cfg.pod_pids_limit == 4096
    assert cfg.healthz_bind_address == "127.0.0.1" and cfg.healthz_port == 10248
    assert cfg.node_status_update_frequency == 90


def test_systemd_cgroup_driver_is_rejected_clearly(tmp_path):
    path = tmp_path / "kubelet-config.yaml"
    path.write_text(TUTORIAL.format(driver="systemd"))
    with pytest.raises(ConfigError, match='cgroupDriver: Unsupported value: "systemd".*cgroupfs'):
        load_file(KubeletConfig(node_name="n"), str(path))


def test_bad_documents():
    with pytest.raises(ConfigError, match="kind must be KubeletConfiguration"):
        apply_configuration(KubeletConfig(node_name="n"), {"apiVersion": "v1", "kind": "Pod"})
    with pytest.raises(ConfigError, match="maxPods: Invalid value: 0"):
        apply_configuration(KubeletConfig(node_name="n"),
                            {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                             "maxPods": 0})
    with pytest.raises(ConfigError, match="failed to read kubelet config file"):
        load_file(KubeletConfig(node_name="n"), "/nonexistent/kubelet.yaml")


def test_durations():
    assert parse_duration("10s") == 10
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1h2m3s") == 3723
    with pytest.raises(ConfigError):
        parse_duration("ten seconds")


def test_event_rate_limit_fields():
    cfg = KubeletConfig(node_name="n")
    assert (cfg.event_record_qps, cfg.event_burst) == (50.0, 100)  # upstream's defaults
    doc = {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
           "eventRecordQPS": 5, "eventBurst": 10}
    assert apply_configuration(cfg, doc) == []
    assert (cfg.event_record_qps, cfg.event_burst) == (5.0, 10)
    with pytest.raises(ConfigError, match="eventRecordQPS: Invalid value: -1"):
        apply_configuration(cfg, {**doc, "eventRecordQPS": -1})
