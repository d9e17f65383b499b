"""Tables for kubectl get: columns and cells as upstream's printers."""

import pytest

from tinykube.api import kinds, tables

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _ago(seconds: int) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(NOW - seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (5, "5s"), (119, "119s"), (182, "3m2s"), (300, "5m"),
    (11 * 60, "11m"), (4 * 3600, "4h"), (4 * 3600 + 60 * 5, "4h5m"), (10 * 3600, "10h"),
    (2 * 86400 + 3 * 3600, "2d3h"), (10 * 86400, "10d"), (3 * 365 * 86400, "3y"),
    (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: int, text: str) -> None:
    assert tables.human_duration(seconds) == text


def _cells(resource: str, obj: dict, wide: bool = True) -> list:
    return tables.to_table(kinds.resolve(resource), [obj], now=NOW, wide=wide)["rows"][0]["cells"]


def _pod(status: dict, spec: dict | None = None, **md) -> dict:
    return {"metadata": {"name": "p", "creationTimestamp": _ago(65), **md},
            "spec": spec or {"containers": [{"name": "a"}, {"name": "b"}]}, "status": status}


def test_pod_running_ready_with_restarts() -> None:
    pod = _pod({"phase": "Running", "podIP": "10.0.0.5",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "a", "ready": True, "restartCount": 3, "state": {"running": {}},
                     "lastState": {"terminated": {"finishedAt": _ago(5)}}},
                    {"name": "b", "ready": True, "restartCount": 0, "state": {"running": {}}}]},
               {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"})
    assert _cells("pods", pod) == ["p", "2/2", "Running", "3 (5s ago)", "65s", "10.0.0.5", "n1",
                                   "<none>", "<none>"]


@pytest.mark.parametrize("status,want", [
    ({"phase": "Pending", "containerStatuses": [
        {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]},
     "ContainerCreating"),
    ({"phase": "Running", "containerStatuses": [
        {"name": "a", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 4}]},
     "CrashLoopBackOff"),
    ({"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]},
     "Completed"),
    ({"phase": "Failed", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 2}}}]}, "ExitCode:2"),
    ({"phase": "Failed", "reason": "Evicted"}, "Evicted"),
    ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                          "reason": "SchedulingGated"}]}, "SchedulingGated"),
])
def test_pod_status_column(status: dict, want: str) -> None:
    assert _cells("pods", _pod(status, {"containers": [{"name": "a"}]}))[2] == want


def test_pod_init_and_terminating() -> None:
    spec = {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]}
    waiting = _pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "state": {"running": {}}}]}, spec)
    assert _cells("pods", waiting)[2] == "Init:1/2"
    crashing = _pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}, spec)
    assert _cells("pods", crashing)[2] == "Init:CrashLoopBackOff"
    failed = _pod({"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}, spec)
    assert _cells("pods", failed)[2] == "Init:Error"
    deleting = _pod({"phase": "Running"}, {"containers": [{"name": "a"}]},
                    deletionTimestamp=_ago(1))
    assert _cells("pods", deleting)[2] == "Terminating"


def test_pod_sidecar_counts_towards_ready() -> None:
    spec = {"initContainers": [{"name": "s", "restartPolicy": "Always"}],
            "containers": [{"name": "a"}]}
    pod = _pod({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"},
                                                   {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [{"name": "s", "started": True, "ready": True,
                                           "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": True, "state": {"running": {}}}]},
               spec)
    assert _cells("pods", pod)[1:3] == ["2/2", "Running"]


def test_table_shape_and_include_object() -> None:
    info = kinds.resolve("configmaps")
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "creationTimestamp": _ago(10)}, "data": {"a": "1", "b": "2"}}
    table = tables.to_table(info, [cm], now=NOW, resource_version="42")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["columnDefinitions"][0]["description"].startswith("Name must be unique")
    assert table["rows"][0]["cells"] == ["c", 2, "10s"]
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata",
                                          "apiVersion": "meta.k8s.io/v1",
                                          "metadata": cm["metadata"]}
    assert tables.to_table(info, [cm], "Object")["rows"][0]["object"] is cm
    assert "object" not in tables.to_table(info, [cm], "None")["rows"][0]
    with pytest.raises(ValueError):
        tables.to_table(info, [cm], "Everything")


def test_wide_columns_are_priority_one() -> None:
    cols = tables.column_definitions(kinds.resolve("pods"))
    assert [c["name"] for c in cols if c["priority"] == 1] == ["IP", "Node", "Nominated Node",
                                                               "Readiness Gates"]
    narrow = tables.to_table(kinds.resolve("pods"), [_pod({})], wide=False, now=NOW)
    assert len(narrow["columnDefinitions"]) == 5 == len(narrow["rows"][0]["cells"])


def test_deployment_replicaset_service_node() -> None:
    d = {"metadata": {"name": "web", "creationTimestamp": _ago(200)},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"spec": {"containers": [{"name": "n", "image": "nginx"}]}}},
         "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert _cells("deployments", d) == ["web", "2/3", 3, 2, "3m20s", "n", "nginx", "app=web"]
    rs = {**d, "status": {"replicas": 3, "readyReplicas": 1}}
    assert _cells("replicasets", rs)[:5] == ["web", 3, 3, 1, "3m20s"]
    svc = {"metadata": {"name": "s", "creationTimestamp": _ago(1)},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                              {"port": 53, "protocol": "UDP"}], "selector": {"app": "web"}}}
    assert _cells("services", svc) == ["s", "NodePort", "10.96.0.10", "<none>",
                                       "80:30080/TCP,53/UDP", "1s", "app=web"]
    lb = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": []}}
    assert _cells("services", lb)[3] == "<pending>"
    node = {"metadata": {"name": "n1", "creationTimestamp": _ago(7200),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian",
                                    "kernelVersion": "6.1", "containerRuntimeVersion": "x://1"}}}
    assert _cells("nodes", node) == ["n1", "Ready,SchedulingDisabled", "control-plane", "120m",
                                     "v1.32.0", "10.0.0.1", "<none>", "Debian", "6.1", "x://1"]


def test_events_endpoints_jobs_and_generic() -> None:
    ev = {"metadata": {"name": "e1"}, "type": "Normal", "reason": "Scheduled",
          "involvedObject": {"kind": "Pod", "name": "web-1"}, "message": "assigned",
          "firstTimestamp": _ago(30), "lastTimestamp": _ago(10), "count": 2,
          "source": {"component": "default-scheduler"}}
    assert _cells("events", ev) == ["10s", "Normal", "Scheduled", "pod/web-1", "",
                                    "default-scheduler", "assigned", "30s", 2, "e1"]
    ep = {"metadata": {"name": "s"}, "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"}
                                                                for i in range(5)],
                                                  "ports": [{"port": 80}]}]}
    assert _cells("endpoints", ep)[1] == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    job = {"metadata": {"name": "j"}, "spec": {"completions": 3},
           "status": {"succeeded": 3, "startTime": _ago(100), "completionTime": _ago(40),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    assert _cells("jobs", job)[:4] == ["j", "Complete", "3/3", "60s"]
    role = {"metadata": {"name": "r", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    table = tables.to_table(kinds.resolve("roles"), [role])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["r", "2024-01-01T00:00:00Z"]


def test_every_kind_has_matching_cells() -> None:
    for info in kinds.RESOURCES:
        obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": "x"}}
        table = tables.to_table(info, [obj], now=NOW)
        assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), info.kind


def test_finished_pod_rows_are_marked_completed() -> None:
    done = _pod({"phase": "Succeeded"}, {"containers": [{"name": "a"}]})
    row = tables.to_table(kinds.resolve("pods"), [done], now=NOW)["rows"][0]
    assert row["conditions"][0]["type"] == "Completed"
    running = _pod({"phase": "Running"}, {"containers": [{"name": "a"}]})
    assert "conditions" not in tables.to_table(kinds.resolve("pods"), [running])["rows"][0]
