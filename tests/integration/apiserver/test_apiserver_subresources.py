"""Services allocation, pods binding/eviction, TokenRequest, bootstrap objects, protobuf."""

from __future__ import annotations

import asyncio
import base64

import orjson

SVC_PATH = "/api/v1/namespaces/default/services"
POD_PATH = "/api/v1/namespaces/default/pods"


def service(name: str, **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec}}


def pod(name: str, labels: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def test_bootstrap_objects(apiserver):
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        status, _ = await apiserver.request("GET", f"/api/v1/namespaces/{ns}")
        assert status == 200, ns
    _, svc = await apiserver.request("GET", f"{SVC_PATH}/kubernetes")
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443
    assert svc["spec"]["ports"][0]["targetPort"] == apiserver.port
    _, ep = await apiserver.request("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    assert ep["subsets"][0]["addresses"][0]["ip"] == "127.0.0.1"
    assert ep["subsets"][0]["ports"][0]["port"] == apiserver.port
    status, eps = await apiserver.request(
        "GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
    assert status == 200 and eps["endpoints"][0]["addresses"] == ["127.0.0.1"]
    status, pc = await apiserver.request(
        "GET", "/apis/scheduling.k8s.io/v1/priorityclasses/system-node-critical")
    assert status == 200 and pc["value"] == 2000001000


async def test_cluster_ip_allocation_and_release(apiserver):
    status, a = await apiserver.request("POST", SVC_PATH, service("a"))
    assert status == 201
    ip = a["spec"]["clusterIP"]
    assert ip.startswith("10.") and ip != "10.96.0.1"
    assert a["spec"]["clusterIPs"] == [ip]
    status, body = await apiserver.request("POST", SVC_PATH, service("b", clusterIP=ip))
    assert status == 422 and "provided IP is already allocated" in body["message"]
    await apiserver.request("DELETE", f"{SVC_PATH}/a")
    status, b = await apiserver.request("POST", SVC_PATH, service("b", clusterIP=ip))
    assert status == 201 and b["spec"]["clusterIP"] == ip


async def test_headless_and_external_name(apiserver):
    status, h = await apiserver.request("POST", SVC_PATH, service("h", clusterIP="None"))
    assert status == 201 and h["spec"]["clusterIP"] == "None"
    status, e = await apiserver.request("POST", SVC_PATH, {
        "metadata": {"name": "e"}, "spec": {"type": "ExternalName",
                                            "externalName": "example.com"}})
    assert status == 201 and "clusterIP" not in e["spec"]


async def test_node_port_allocation(apiserver):
    status, np = await apiserver.request("POST", SVC_PATH, service("np", type="NodePort"))
    assert status == 201
    port = np["spec"]["ports"][0]["nodePort"]
    assert 30000 <= port <= 32767
    status, body = await apiserver.request("POST", SVC_PATH, {
        "metadata": {"name": "np2"}, "spec": {"type": "NodePort", "ports": [
            {"port": 80, "nodePort": port}]}})
    assert status == 422 and "provided port is already allocated" in body["message"]
    # an update that leaves out the allocated values keeps them
    status, updated = await apiserver.request("PUT", f"{SVC_PATH}/np", {
        "metadata": {"name": "np"}, "spec": {"type": "NodePort", "selector": {"app": "x"},
                                             "ports": [{"port": 80}]}})
    assert status == 200
    assert updated["spec"]["clusterIP"] == np["spec"]["clusterIP"]
    assert updated["spec"]["ports"][0]["nodePort"] == port


async def test_binding(apiserver):
    await apiserver.request("POST", POD_PATH, pod("b"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    status, body = await apiserver.request("POST", f"{POD_PATH}/b/binding", binding)
    assert status == 201 and body["kind"] == "Status" and body["status"] == "Success"
    _, bound = await apiserver.request("GET", f"{POD_PATH}/b")
    assert bound["spec"]["nodeName"] == "node-1"
    conditions = {c["type"]: c["status"] for c in bound["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True"
    status, body = await apiserver.request("POST", f"{POD_PATH}/b/binding", binding)
    assert status == 409
    assert 'is already assigned to node "node-1"' in body["message"]


async def test_pod_admission_defaults(apiserver):
    _, created = await apiserver.request("POST", POD_PATH, pod("adm"))
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default"
    volumes = [v["name"] for v in spec["volumes"]]
    assert any(v.startswith("kube-api-access-") and len(v) == len("kube-api-access-") + 5
               for v in volumes)
    mounts = spec["containers"][0]["volumeMounts"]
    assert mounts[0]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    keys = {t.get("key") for t in spec["tolerations"]}
    assert {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"} <= keys
    assert spec["priority"] == 0
    assert created["status"]["phase"] == "Pending"
    assert created["status"]["qosClass"] == "BestEffort"


async def test_priority_class_resolution(apiserver):
    body = pod("crit")
    body["spec"]["priorityClassName"] = "system-cluster-critical"
    _, created = await apiserver.request("POST", POD_PATH, body)
    assert created["spec"]["priority"] == 2000000000
    body = pod("nope")
    body["spec"]["priorityClassName"] = "no-such-class"
    status, err = await apiserver.request("POST", POD_PATH, body)
    assert status == 403 and "no PriorityClass with name no-such-class" in err["message"]


async def test_eviction_honours_pdb(apiserver):
    await apiserver.request("POST", POD_PATH, pod("ev", {"app": "guarded"}))
    pdb_path = "/apis/policy/v1/namespaces/default/poddisruptionbudgets"
    status, _ = await apiserver.request("POST", pdb_path, {
        "metadata": {"name": "pdb"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})
    assert status == 201
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": "ev", "namespace": "default"}}
    status, body = await apiserver.request("POST", f"{POD_PATH}/ev/eviction", eviction)
    assert status == 429 and body["reason"] == "TooManyRequests"
    status, _ = await apiserver.request("PATCH", f"{pdb_path}/pdb/status",
                                        {"status": {"disruptionsAllowed": 1}},
                                        content_type="application/merge-patch+json")
    assert status == 200
    status, body = await apiserver.request("POST", f"{POD_PATH}/ev/eviction", eviction)
    assert status == 201
    status, _ = await apiserver.request("GET", f"{POD_PATH}/ev")
    assert status == 404


async def test_token_request_and_authentication(apiserver):
    sa_path = "/api/v1/namespaces/default/serviceaccounts"
    await apiserver.request("POST", sa_path, {"metadata": {"name": "robot"}})
    status, tr = await apiserver.request("POST", f"{sa_path}/robot/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600}})
    assert status == 201
    token = tr["status"]["token"]
    header, payload, _ = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert orjson.loads(base64.urlsafe_b64decode(header + "==="))["alg"] == "RS256"
    assert claims["sub"] == "system:serviceaccount:default:robot"
    user = apiserver.server.authenticator.authenticate_bearer(token)
    assert user is not None and user.name == "system:serviceaccount:default:robot"
    assert "system:serviceaccounts:default" in user.groups
    status, _ = await apiserver.request("GET", "/api/v1/namespaces/default/configmaps",
                                        headers={"Authorization": f"Bearer {token}"})
    assert status == 200


async def test_protobuf_create(apiserver):
    """kubectl's typed clients send protobuf bodies (here: a ConfigMap, hand-encoded)."""
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    meta = field(1, b"pb")
    entry = field(1, b"k") + field(2, b"v")
    raw = field(1, meta) + field(2, entry)
    type_meta = field(1, b"v1") + field(2, b"ConfigMap")
    body = b"k8s\x00" + field(1, type_meta) + field(2, raw)
    status, obj = await apiserver.request("POST", "/api/v1/namespaces/default/configmaps", body,
                                          content_type="application/vnd.kubernetes.protobuf")
    assert status == 201, obj
    assert obj["metadata"]["name"] == "pb" and obj["data"] == {"k": "v"}


async def test_events_k8s_io_is_a_view_of_core_events(apiserver):
    v1_path = "/apis/events.k8s.io/v1/namespaces/default/events"
    core_path = "/api/v1/namespaces/default/events"
    status, created = await apiserver.request("POST", v1_path, {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Started", "type": "Normal",
        "note": "started it", "action": "Start", "reportingController": "tinykube/test",
        "reportingInstance": "test-1",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}})
    assert status == 201, created
    assert created["apiVersion"] == "events.k8s.io/v1" and created["note"] == "started it"
    _, core = await apiserver.request("GET", f"{core_path}/e1")
    assert core["apiVersion"] == "v1" and core["message"] == "started it"
    assert core["involvedObject"]["name"] == "p" and core["reportingComponent"] == "tinykube/test"
    _, lst = await apiserver.request("GET", v1_path)
    assert lst["apiVersion"] == "events.k8s.io/v1"
    assert [i["regarding"]["name"] for i in lst["items"]] == ["p"]
    status, patched = await apiserver.request("PATCH", f"{v1_path}/e1", {"note": "again"},
                                              content_type="application/merge-patch+json")
    assert status == 200 and patched["note"] == "again"
    _, core = await apiserver.request("GET", f"{core_path}/e1")
    assert core["message"] == "again"
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(apiserver.url + v1_path + "?watch=1&resourceVersion=0") as resp:
            line = await asyncio.wait_for(resp.content.readline(), 10)
            event = orjson.loads(line)
            assert event["type"] == "ADDED"
            assert event["object"]["apiVersion"] == "events.k8s.io/v1"
            assert event["object"]["note"] == "again"


async def test_resource_quota_admission(apiserver):
    quota_path = "/api/v1/namespaces/default/resourcequotas"
    status, _ = await apiserver.request("POST", quota_path, {
        "metadata": {"name": "q"}, "spec": {"hard": {"pods": "2", "configmaps": "10"}}})
    assert status == 201
    # before the resourcequota controller published status.hard, nothing is enforced
    status, body = await apiserver.request("POST", POD_PATH, pod("q0"))
    assert status == 201
    # published limits without usage: upstream refuses to guess
    status, _ = await apiserver.request("PATCH", f"{quota_path}/q/status", {
        "status": {"hard": {"pods": "2"}, "used": {}}},
        content_type="application/merge-patch+json")
    assert status == 200
    status, body = await apiserver.request("POST", POD_PATH, pod("q00"))
    assert status == 403 and "status unknown for quota: q, resources: pods" in body["message"]
    status, _ = await apiserver.request("PATCH", f"{quota_path}/q/status", {
        "status": {"hard": {"pods": "2", "configmaps": "10"},
                   "used": {"pods": "1", "configmaps": "0"}}},
        content_type="application/merge-patch+json")
    assert status == 200
    status, _ = await apiserver.request("POST", POD_PATH, pod("q1"))
    assert status == 201
    _, quota = await apiserver.request("GET", f"{quota_path}/q")
    assert quota["status"]["used"]["pods"] == "2"
    status, body = await apiserver.request("POST", POD_PATH, pod("q2"))
    assert status == 403
    assert body["message"] == ('pods "q2" is forbidden: exceeded quota: q, requested: pods=1, '
                               'used: pods=2, limited: pods=2')
    # unrelated kinds pass, and are charged to the resources they use
    status, _ = await apiserver.request("POST", "/api/v1/namespaces/default/configmaps",
                                        {"metadata": {"name": "cm"}})
    assert status == 201
    _, quota = await apiserver.request("GET", f"{quota_path}/q")
    assert quota["status"]["used"]["configmaps"] == "1"


SMP = "application/strategic-merge-patch+json"


async def test_ephemeral_containers_are_added_through_their_subresource_only(apiserver):
    """kubectl debug's PATCH of pods/<name>/ephemeralcontainers adds a container (merged by
    name) and nothing else; it cannot remove or change one, and a create cannot set any."""
    status, _ = await apiserver.request("POST", POD_PATH, pod("dbg"))
    assert status == 201
    debugger = {"name": "debugger", "image": "busybox", "stdin": True, "tty": True, "targetContainerName": "c"}
    status, patched = await apiserver.request(
        "PATCH", f"{POD_PATH}/dbg/ephemeralcontainers", content_type=SMP,
        body={"metadata": {"labels": {"sneaked": "in"}}, "spec": {"ephemeralContainers": [debugger],
                                                                 "activeDeadlineSeconds": 5}})
    assert status == 200
    added = patched["spec"]["ephemeralContainers"]
    assert [c["name"] for c in added] == ["debugger"] and added[0]["terminationMessagePolicy"] == "File"
    assert "sneaked" not in patched["metadata"].get("labels", {})  # only ephemeralContainers changed
    assert "activeDeadlineSeconds" not in patched["spec"]
    status, got = await apiserver.request("GET", f"{POD_PATH}/dbg/ephemeralcontainers")
    assert status == 200 and got["kind"] == "Pod" and got["spec"]["ephemeralContainers"] == added
    second = {"name": "second", "image": "busybox", "ports": [{"containerPort": 80}]}
    status, body = await apiserver.request("PATCH", f"{POD_PATH}/dbg/ephemeralcontainers", content_type=SMP,
                                           body={"spec": {"ephemeralContainers": [second]}})
    assert status == 422 and body["reason"] == "Invalid"
    assert {"reason": "FieldValueForbidden", "field": "spec.ephemeralContainers[1].ports",
            "message": "Forbidden: cannot be set for an Ephemeral Container"} in body["details"]["causes"]
    status, body = await apiserver.request("PUT", f"{POD_PATH}/dbg/ephemeralcontainers",
                                           body={**got, "spec": {**got["spec"], "ephemeralContainers": []}})
    assert status == 422 and 'existing ephemeral containers "debugger" may not be removed' in body["message"]
    with_ephemeral = pod("born-with")
    with_ephemeral["spec"]["ephemeralContainers"] = [{"name": "d", "image": "busybox"}]
    status, body = await apiserver.request("POST", POD_PATH, with_ephemeral)
    assert status == 422 and "spec.ephemeralContainers: Forbidden: cannot be set on create" in body["message"]
