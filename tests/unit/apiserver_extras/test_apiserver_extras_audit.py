"""Audit policy matching, event shape and the rotating log file."""

import datetime as dt

import orjson
import pytest

from tinykube.apiserver import audit
from tinykube.apiserver.request import UserInfo, parse_request_info

TUTORIAL_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "rules": [{
        "level": "RequestResponse",
        "omitStages": ["RequestReceived"],
        "resources": [{"group": "", "resources": ["pods", "services"]}],
        "namespaces": ["default"],
    }],
}
ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))


def _info(method, path, query=None, user=ADMIN):
    info = parse_request_info(method, path, query or {})
    info.user = user
    info.request_uri = path
    info.source_ip = "127.0.0.1"
    info.user_agent = "kubectl/v1.32.0"
    return info


def test_tutorial_policy_logs_pods_in_default_only():
    policy = audit.Policy.from_dict(TUTORIAL_POLICY)
    decision = policy.evaluate(_info("POST", "/api/v1/namespaces/default/pods"))
    assert decision.level == "RequestResponse"
    assert decision.omit_stages == {"RequestReceived"}
    assert not policy.evaluate(_info("POST", "/api/v1/namespaces/default/configmaps")).enabled
    assert not policy.evaluate(_info("POST", "/api/v1/namespaces/other/pods")).enabled
    assert not policy.evaluate(_info("GET", "/healthz")).enabled
    # pods/log is "pods/log", not "pods"
    assert not policy.evaluate(_info("GET", "/api/v1/namespaces/default/pods/p/log")).enabled


def test_first_matching_rule_wins_and_selectors():
    policy = audit.Policy.from_dict({
        "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
            {"level": "None", "nonResourceURLs": ["/healthz*", "/version"]},
            {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets"]}]},
            {"level": "Request", "resources": [{"group": "", "resources": ["pods/*"]}]},
            {"level": "Request", "resources": [{"group": "apps", "resources": ["*/scale"]}]},
            {"level": "RequestResponse", "userGroups": ["system:masters"],
             "resources": [{"group": "", "resources": ["configmaps"],
                            "resourceNames": ["special"]}]},
            {"level": "Metadata", "omitStages": ["ResponseStarted"]},
        ]})
    proxy = UserInfo("system:kube-proxy")
    assert not policy.evaluate(_info("GET", "/api/v1/endpoints", {"watch": "1"}, proxy)).enabled
    assert policy.evaluate(_info("GET", "/api/v1/endpoints", {}, proxy)).level == "Metadata"
    assert not policy.evaluate(_info("GET", "/healthz/etcd")).enabled
    assert not policy.evaluate(_info("GET", "/version")).enabled
    assert policy.evaluate(_info("GET", "/api/v1/namespaces/a/secrets/s")).level == "Metadata"
    assert policy.evaluate(_info("GET", "/api/v1/namespaces/a/pods/p/log")).level == "Request"
    assert policy.evaluate(
        _info("PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale")).level == "Request"
    special = policy.evaluate(_info("GET", "/api/v1/namespaces/a/configmaps/special"))
    assert special.level == "RequestResponse"
    other = policy.evaluate(_info("GET", "/api/v1/namespaces/a/configmaps/other"))
    assert other.level == "Metadata"
    assert other.omit_stages == {"RequestReceived", "ResponseStarted"}


@pytest.mark.parametrize("doc, message", [
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1", "rules": [{"level": "Loud"}]},
     'rules[0].level: Unsupported value: "Loud"'),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1",
      "rules": [{"level": "None", "omitStages": ["Later"]}]}, 'Unsupported value: "Later"'),
    ({"kind": "ConfigMap", "apiVersion": "v1"}, "kind must be Policy"),
    ({"kind": "Policy", "apiVersion": "audit.k8s.io/v1",
      "rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]},
     "both regular resources and non-resource URLs"),
])
def test_invalid_policies_are_rejected(doc, message):
    with pytest.raises(audit.PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        audit.Policy.from_dict(doc)


def test_policy_file_loads_yaml(tmp_path):
    path = tmp_path / "audit-policy.yaml"
    path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    assert audit.Policy.load(path).rules[0].level == "Metadata"
    with pytest.raises(audit.PolicyError):
        audit.Policy.load(tmp_path / "missing.yaml")


def test_event_shape_for_a_pod_create():
    info = _info("POST", "/api/v1/namespaces/default/pods")
    decision = audit.Policy.from_dict(TUTORIAL_POLICY).evaluate(info)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}}
    ra = audit.RequestAudit(info, decision, request_object=pod,
                            response_object={**pod, "metadata": {"name": "web", "uid": "u"}})
    ev = ra.event("ResponseComplete", 201, now=info.started + 0.5)
    assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1"
    assert ev["level"] == "RequestResponse" and ev["stage"] == "ResponseComplete"
    assert ev["verb"] == "create" and ev["auditID"] == info.audit_id
    assert ev["user"] == {"username": "admin", "groups": ["system:masters",
                                                          "system:authenticated"]}
    assert ev["objectRef"] == {"resource": "pods", "namespace": "default", "name": "web",
                               "apiVersion": "v1"}
    assert ev["responseStatus"] == {"metadata": {}, "code": 201}
    assert ev["requestObject"] == pod and ev["responseObject"]["metadata"]["uid"] == "u"
    assert ev["sourceIPs"] == ["127.0.0.1"]
    assert ev["requestReceivedTimestamp"].endswith("Z")
    assert len(ev["stageTimestamp"].split(".")[1]) == 7  # microseconds + Z


def test_metadata_level_has_no_bodies_and_failure_status_is_copied():
    info = _info("DELETE", "/apis/apps/v1/namespaces/a/deployments/d")
    status = {"kind": "Status", "status": "Failure", "message": "not found",
              "reason": "NotFound", "code": 404}
    ra = audit.RequestAudit(info, audit.Decision("Metadata"), request_object={"x": 1},
                            response_object=status, status_object=status)
    ev = ra.event("ResponseComplete", 404)
    assert "requestObject" not in ev and "responseObject" not in ev
    assert ev["objectRef"]["apiGroup"] == "apps"
    assert ev["responseStatus"] == {"metadata": {}, "status": "Failure", "message": "not found",
                                    "reason": "NotFound", "code": 404}


def test_omit_managed_fields():
    info = _info("POST", "/api/v1/namespaces/default/pods")
    obj = {"metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}]}}
    ra = audit.RequestAudit(info, audit.Decision("Request", omit_managed_fields=True),
                            request_object=obj)
    assert ra.event("ResponseComplete", 201)["requestObject"] == {"metadata": {"name": "p"}}


class _Clock:
    def __init__(self):
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

    def __call__(self):
        self.now += dt.timedelta(seconds=1)
        return self.now


def test_rotation_by_size_keeps_max_backups(tmp_path):
    clock = _Clock()
    log = audit.RotatingFile(tmp_path / "audit.log", max_bytes=100, max_backups=2, clock=clock)
    for i in range(10):
        log.write(b"x" * 60 + b"\n")
    log.close()
    backups = log.backups()
    assert len(backups) == 2
    assert all(p.name.startswith("audit-2026-01-01T00-00-") and p.name.endswith(".log")
               for _, p in backups)
    assert (tmp_path / "audit.log").stat().st_size == 61


def test_rotation_prunes_by_age(tmp_path):
    clock = _Clock()
    old = audit.backup_name(tmp_path / "audit.log", clock.now - dt.timedelta(days=40))
    old.write_bytes(b"old\n")
    log = audit.RotatingFile(tmp_path / "audit.log", max_bytes=10, max_age_days=30, clock=clock)
    log.write(b"a" * 8)
    log.write(b"b" * 8)  # rotates, then prunes the 40-day-old backup
    log.close()
    assert not old.exists()
    assert len(log.backups()) == 1


def test_backup_names_round_trip(tmp_path):
    when = dt.datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=dt.timezone.utc)
    name = audit.backup_name(tmp_path / "audit.log", when)
    assert name.name == "audit-2026-03-04T05-06-07.891.log"
    assert audit.parse_backup_time(tmp_path / "audit.log", name) == when
    assert audit.parse_backup_time(tmp_path / "audit.log", tmp_path / "audit.log") is None


def test_writer_keeps_order(tmp_path):
    sink = audit.RotatingFile(tmp_path / "a.log", max_bytes=10**6)
    writer = audit.AuditLogWriter(sink)
    for i in range(500):
        writer.submit({"n": i})
    writer.close()
    lines = (tmp_path / "a.log").read_bytes().splitlines()
    assert [orjson.loads(line)["n"] for line in lines] == list(range(500))


def test_unwritable_log_path_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(audit.PolicyError, match="unable to open audit log file"):
        audit.check_log_path(str(blocker / "audit.log"))
    audit.check_log_path(str(tmp_path / "new" / "audit.log"))
    assert (tmp_path / "new" / "audit.log").exists()
