"""View models: objects -> the rows the dashboard shows (pure, no server)."""

from __future__ import annotations

from tinykube.api import meta
from tinykube.dashboard import views

NOW = meta.parse_time("2026-01-01T12:00:00Z").timestamp()


def node(name: str, ready: str = "True", **spec) -> dict:
    return {
        "metadata": {"name": name, "creationTimestamp": "2026-01-01T11:00:00Z",
                     "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready}],
                   "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110", "hugepages-2Mi": "0"},
                   "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110"},
                   "nodeInfo": {"kubeletVersion": "v1.32.0"},
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]},
    }


def pod(name: str, ns: str = "default", node_name: str = "n1", phase: str = "Running",
        ready: bool = True, restarts: int = 0, owner: str | None = None, **metadata) -> dict:
    refs = ([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": "u",
              "controller": True}] if owner else [])
    state = {"running": {"startedAt": "2026-01-01T11:59:00Z"}} if phase == "Running" else \
        {"waiting": {"reason": "ContainerCreating"}}
    return {
        "metadata": {"name": name, "namespace": ns, "ownerReferences": refs,
                     "creationTimestamp": "2026-01-01T11:58:00Z", **metadata},
        "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": phase, "podIP": "10.244.0.5",
                   "containerStatuses": [{"name": "c", "ready": ready, "restartCount": restarts,
                                          "state": state}]},
    }


def event(name: str, reason: str, last: str, type_: str = "Normal", rv: str = "1",
          kind: str = "Pod", obj: str = "p") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
            "involvedObject": {"kind": kind, "name": obj, "namespace": "default"},
            "reason": reason, "message": f"{reason} happened", "type": type_,
            "firstTimestamp": last, "lastTimestamp": last, "count": 1,
            "source": {"component": "kubelet", "host": "n1"}}


def test_node_rows_count_only_active_pods_bound_to_each_node():
    rows = views.node_rows(
        [node("n2", ready="False"), node("n1")],
        [pod("a"), pod("b"), pod("done", phase="Succeeded"), pod("c", node_name="n2"),
         pod("pending", node_name="")], NOW)
    assert [r["name"] for r in rows] == ["n1", "n2"]
    n1, n2 = rows
    assert (n1["status"], n1["ready"], n1["pods"]) == ("Ready", True, 2)
    assert (n2["status"], n2["ready"], n2["pods"]) == ("NotReady", False, 1)
    assert n1["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert n1["allocatable"]["cpu"] == "3800m"
    assert (n1["roles"], n1["age"], n1["version"], n1["internalIP"]) == \
        ("control-plane", "60m", "v1.32.0", "10.0.0.1")


def test_cordoned_tainted_node_shows_scheduling_disabled():
    row = views.node_row(node("n1", unschedulable=True,
                              taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
                         0, NOW)
    assert row["status"] == "Ready,SchedulingDisabled" and row["ready"]
    assert row["unschedulable"] and row["taints"] == ["k=v:NoSchedule"]


def test_pod_row_reads_like_kubectl():
    row = views.pod_row(pod("web-1", owner="web-abc", restarts=2), NOW)
    assert (row["name"], row["ready"], row["status"], row["age"]) == \
        ("web-1", "1/1", "Running", "2m")
    assert row["restarts"] == "2" and row["owner"] == "ReplicaSet/web-abc"
    waiting = views.pod_row(pod("w", phase="Pending", ready=False), NOW)
    assert (waiting["ready"], waiting["status"]) == ("0/1", "ContainerCreating")
    deleting = views.pod_row(pod("d", deletionTimestamp="2026-01-01T11:59:59Z"), NOW)
    assert deleting["status"] == "Terminating"


def test_control_plane_rows_are_kube_system_pods():
    rows = views.control_plane_rows(
        [pod("kube-apiserver-n1", ns="kube-system", labels={"component": "kube-apiserver"}),
         pod("web", ns="default")], NOW)
    assert [(r["name"], r["component"]) for r in rows] == [("kube-apiserver-n1",
                                                            "kube-apiserver")]


def test_overview_counts_ready_nodes_and_phases():
    data = views.overview([node("n1"), node("n2", ready="False")],
                          [pod("a"), pod("b", phase="Pending")], NOW)
    assert data["nodesReady"] == 1 and len(data["nodes"]) == 2
    assert data["podPhases"] == {"Pending": 1, "Running": 1}


def test_workload_rows():
    deployment = {"metadata": {"name": "web", "namespace": "default",
                               "creationTimestamp": "2026-01-01T11:00:00Z"},
                  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"spec": {"containers": [
                               {"name": "c", "image": "nginx:1"}]}}},
                  "status": {"readyReplicas": 2, "updatedReplicas": 3,
                             "availableReplicas": 2}}
    rs = {"metadata": {"name": "web-abc", "namespace": "default",
                       "ownerReferences": [{"kind": "Deployment", "name": "web",
                                            "controller": True}]},
          "spec": {"replicas": 3}, "status": {"replicas": 3, "readyReplicas": 2}}
    data = views.workload_rows([deployment], [rs], [pod("b"), pod("a")], NOW)
    [d] = data["deployments"]
    assert (d["ready"], d["upToDate"], d["available"], d["replicas"], d["images"],
            d["selector"]) == ("2/3", 3, 2, 3, "nginx:1", "app=web")
    [r] = data["replicasets"]
    assert (r["desired"], r["current"], r["ready"], r["owner"]) == (3, 3, 2, "Deployment/web")
    assert [p["name"] for p in data["pods"]] == ["a", "b"]


def test_service_rows_join_endpoints_by_namespace_and_name():
    svc = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20", "selector": {"app": "web"},
                    "ports": [{"port": 80, "protocol": "TCP"}]}}
    other = {"metadata": {"name": "db", "namespace": "default"}, "spec": {"clusterIP": "None"}}
    endpoints = {"metadata": {"name": "web", "namespace": "default"},
                 "subsets": [{"addresses": [{"ip": "10.244.0.5",
                                             "targetRef": {"kind": "Pod", "name": "web-1"}}],
                              "notReadyAddresses": [{"ip": "10.244.0.6"}],
                              "ports": [{"port": 8080}]}]}
    db, web = views.service_rows([svc, other], {"default/web": endpoints}, NOW)
    assert (web["clusterIP"], web["ports"], web["selector"]) == ("10.96.0.20", "80/TCP",
                                                                 "app=web")
    assert web["endpoints"] == ["10.244.0.5:8080 (web-1)"]
    assert web["notReadyEndpoints"] == ["10.244.0.6:8080"]
    assert db["endpoints"] == [] and db["name"] == "db"


def test_events_newest_first_with_warnings_flagged():
    rows = views.event_rows([
        event("e1", "Scheduled", "2026-01-01T11:00:00Z", rv="5"),
        event("e2", "BackOff", "2026-01-01T11:30:00Z", type_="Warning", rv="7"),
        event("e3", "Pulled", "2026-01-01T11:30:00Z", rv="9"),
    ], NOW)
    assert [r["name"] for r in rows] == ["e3", "e2", "e1"]  # same second: newer rv first
    assert [r["warning"] for r in rows] == [False, True, False]
    assert rows[1]["lastSeen"] == "30m" and rows[1]["object"] == "pod/p"
    assert rows[1]["source"] == "kubelet, n1"


def test_events_filtered_by_involved_object():
    evs = [event("e1", "ScalingReplicaSet", "2026-01-01T11:00:00Z", kind="Deployment",
                 obj="web"),
           event("e2", "Scheduled", "2026-01-01T11:00:01Z", obj="web")]
    rows = views.event_rows(evs, NOW, involved="deployment/web")
    assert [r["name"] for r in rows] == ["e1"]
    assert len(views.event_rows(evs, NOW, limit=1)) == 1


def test_event_time_prefers_series_then_last_timestamp():
    ev = event("e", "R", "2026-01-01T10:00:00Z")
    assert views.event_time(ev) == "2026-01-01T10:00:00Z"
    ev["series"] = {"lastObservedTime": "2026-01-01T11:00:00.000000Z", "count": 4}
    assert views.event_time(ev) == "2026-01-01T11:00:00.000000Z"
    assert views.event_time({"metadata": {"creationTimestamp": "2026-01-01T09:00:00Z"}}) == \
        "2026-01-01T09:00:00Z"


def test_namespace_rows_count_pods():
    namespaces = [{"metadata": {"name": n}, "status": {"phase": "Active"}}
                  for n in ("kube-system", "default")]
    rows = views.namespace_rows(namespaces, [pod("a"), pod("b"), pod("c", ns="kube-system")],
                                NOW)
    assert [(r["name"], r["pods"], r["status"]) for r in rows] == \
        [("default", 2, "Active"), ("kube-system", 1, "Active")]


def lease(ns: str, name: str, holder: str | None, renewed: str | None) -> dict:
    spec = {k: v for k, v in (("holderIdentity", holder), ("renewTime", renewed)) if v}
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def test_node_heartbeat_comes_from_its_node_lease():
    leases = [lease("kube-node-lease", "n1", "n1", "2026-01-01T11:59:50.000000Z"),
              lease("kube-system", "n2", "x", "2026-01-01T11:00:00.000000Z")]
    n1, n2 = views.node_rows([node("n1"), node("n2")], [], NOW, leases)
    assert n1["heartbeat"] == "10s"
    assert n2["heartbeat"] == "<none>"  # a kube-system Lease is not a node heartbeat


def test_leader_rows_are_kube_system_leases():
    leases = [lease("kube-system", "kube-scheduler", "host_abc", "2026-01-01T11:59:58.000000Z"),
              lease("kube-system", "kube-controller-manager", None, None),
              lease("kube-node-lease", "n1", "n1", "2026-01-01T11:59:58.000000Z")]
    rows = views.leader_rows(leases, NOW)
    assert [(r["name"], r["holder"], r["renewed"]) for r in rows] == [
        ("kube-controller-manager", "<unset>", "<never>"),
        ("kube-scheduler", "host_abc", "2s")]
    assert views.overview([], [], NOW, leases)["leaders"] == rows
