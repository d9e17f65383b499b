"""Validation reports upstream's field errors."""

import copy


from tinykube.api import defaults, kinds, validation
from tinykube.api.errors import Cause

POD = kinds.resolve("pods")
DEPLOY = kinds.resolve("deployments")


def _fields(info, obj, old=None) -> list[str]:
    return [str(c) for c in validation.validate(info, obj, old)]


def _pod(**spec) -> dict:
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}
    return defaults.apply_defaults(POD, obj)


def _deploy(labels=None) -> dict:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "d"},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": labels or {"app": "web"}},
                                 "spec": {"containers": [{"name": "n", "image": "nginx"}]}}}}
    return defaults.apply_defaults(DEPLOY, obj)


def test_valid_objects_have_no_causes() -> None:
    assert validation.validate(POD, _pod()) == []
    assert validation.validate(DEPLOY, _deploy()) == []


def test_configmap_bad_name_message() -> None:
    cm = kinds.resolve("configmaps")
    causes = validation.validate(cm, {"metadata": {"name": "Bad_Name", "namespace": "d"}})
    err = validation.build_invalid_error(cm, "Bad_Name", causes)
    assert err.code == 422
    assert err.message.startswith('ConfigMap "Bad_Name" is invalid: metadata.name: Invalid '
                                  'value: "Bad_Name": a lowercase RFC 1123 subdomain must '
                                  'consist of')
    assert err.status()["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_metadata_rules() -> None:
    cm = kinds.resolve("configmaps")
    assert _fields(cm, {"metadata": {"namespace": "d"}}) == [
        "metadata.name: Required value: name or generateName is required"]
    assert _fields(cm, {"metadata": {"generateName": "web-", "namespace": "d"}}) == []
    assert _fields(cm, {"metadata": {"name": "x"}}) == ["metadata.namespace: Required value"]
    assert _fields(kinds.resolve("nodes"), {"metadata": {"name": "n", "namespace": "d"}}) == [
        "metadata.namespace: Forbidden: not allowed on this type"]
    bad_labels = _fields(cm, {"metadata": {"name": "x", "namespace": "d",
                                           "labels": {"bad key": "v", "k": "bad value"}}})
    assert len(bad_labels) == 2 and all(f.startswith("metadata.labels: Invalid value")
                                        for f in bad_labels)
    ns = kinds.resolve("namespaces")
    assert "RFC 1123 label" in _fields(ns, {"metadata": {"name": "a.b"}})[0]
    svc = kinds.resolve("services")
    svc_obj = defaults.apply_defaults(svc, {"metadata": {"name": "1abc", "namespace": "d"},
                                            "spec": {"ports": [{"port": 80}]}})
    assert "DNS-1035 label" in _fields(svc, svc_obj)[0]
    role = kinds.resolve("clusterroles")
    assert _fields(role, {"metadata": {"name": "system:controller:x"}}) == []


def test_update_keeps_name_immutable() -> None:
    cm = kinds.resolve("configmaps")
    old = {"metadata": {"name": "a", "namespace": "d", "uid": "1"}}
    new = {"metadata": {"name": "b", "namespace": "d", "uid": "1"}}
    assert 'metadata.name: Invalid value: "b": field is immutable' in _fields(cm, new, old)


def test_pod_errors() -> None:
    pod = _pod(restartPolicy="Sometimes")
    pod["spec"]["containers"].append({"name": "c", "imagePullPolicy": "Sometimes",
                                      "ports": [{"containerPort": 70000, "protocol": "TCP"}],
                                      "resources": {"requests": {"cpu": "2"},
                                                    "limits": {"cpu": "1"}},
                                      "volumeMounts": [{"name": "data", "mountPath": "/d"}]})
    got = _fields(POD, pod)
    assert "spec.containers[1].image: Required value" in got
    assert 'spec.containers[1].name: Duplicate value: "c"' in got
    assert ('spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
            '"OnFailure", "Never"') in got
    assert ('spec.containers[1].imagePullPolicy: Unsupported value: "Sometimes": supported '
            'values: "Always", "IfNotPresent", "Never"') in got
    assert ("spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between "
            "1 and 65535, inclusive") in got
    assert ('spec.containers[1].resources.requests[cpu]: Invalid value: "2": must be less than '
            'or equal to cpu limit of 1') in got
    assert 'spec.containers[1].volumeMounts[0].name: Not found: "data"' in got
    err = validation.build_invalid_error(POD, "p", validation.validate(POD, pod))
    assert err.message.startswith('Pod "p" is invalid: [')


def test_pod_without_containers_and_bad_quantity() -> None:
    assert "spec.containers: Required value" in _fields(POD, _pod(containers=[]))
    bad = _pod(containers=[{"name": "c", "image": "x", "resources": {"limits": {"cpu": "lots"}}}])
    assert any(f.startswith('spec.containers[0].resources.limits[cpu]: Invalid value: "lots": '
                            "quantities must match the regular expression") for f in
               _fields(POD, bad))


def test_pod_tolerations() -> None:
    got = _fields(POD, _pod(tolerations=[{"key": "k", "operator": "Exists", "value": "v"},
                                         {"operator": "Equal", "value": "v"},
                                         {"key": "k", "tolerationSeconds": 5,
                                          "effect": "NoSchedule"}]))
    assert any("value must be empty when `operator` is 'Exists'" in f for f in got)
    assert any("operator must be Exists when `key` is empty" in f for f in got)
    assert any("effect must be 'NoExecute' when `tolerationSeconds` is set" in f for f in got)


def test_pod_update_rules() -> None:
    old = _pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:2"
    new["spec"]["tolerations"] = [{"key": "x", "operator": "Exists"}]
    new["spec"]["activeDeadlineSeconds"] = 30
    assert _fields(POD, new, old) == []
    bound = copy.deepcopy(old)
    bound["spec"]["nodeName"] = "n1"
    assert _fields(POD, bound, old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["restartPolicy"] = "Never"
    got = _fields(POD, changed, old)
    assert got and got[0].startswith("spec: Forbidden: pod updates may not change fields other "
                                     "than `spec.containers[*].image`")


def test_deployment_rules() -> None:
    mismatch = _fields(DEPLOY, _deploy({"app": "other"}))
    assert mismatch == ['spec.template.metadata.labels: Invalid value: '
                        'map[string]string{"app":"other"}: `selector` does not match template '
                        '`labels`']
    d = _deploy()
    d["spec"]["replicas"] = -1
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    d["spec"]["strategy"] = {"type": "RollingUpdate",
                             "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}
    got = _fields(DEPLOY, d)
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in got
    assert ('spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
            '"Always"') in got
    assert ("spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
            "`maxSurge` is 0") in got
    no_selector = _deploy()
    del no_selector["spec"]["selector"]
    assert "spec.selector: Required value" in _fields(DEPLOY, no_selector)
    empty = _deploy()
    empty["spec"]["selector"] = {}
    assert any("empty selector is invalid for deployment" in f for f in _fields(DEPLOY, empty))
    old, new = _deploy(), _deploy()
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    new["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    assert any(f.startswith("spec.selector: Invalid value: v1.LabelSelector{") and
               f.endswith("field is immutable") for f in _fields(DEPLOY, new, old))


def test_job_and_cronjob_rules() -> None:
    jobs = kinds.resolve("jobs")
    job = defaults.apply_defaults(jobs, {"metadata": {"name": "j", "namespace": "d", "uid": "u"},
                                         "spec": {"template": {"spec": {
                                             "containers": [{"name": "c", "image": "x"}]}}}})
    assert ('spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", '
            '"Never"') in _fields(jobs, job)
    cron = kinds.resolve("cronjobs")
    cj = defaults.apply_defaults(cron, {"metadata": {"name": "c", "namespace": "d"}, "spec": {
        "schedule": "every minute", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "x"}], "restartPolicy": "OnFailure"}}}}}})
    assert _fields(cron, cj) == ['spec.schedule: Invalid value: "every minute": expected exactly '
                                 '5 fields, found 2: every minute']
    cj["spec"]["schedule"] = "*/5 * * * *"
    assert _fields(cron, cj) == []
    cj["spec"]["schedule"] = "61 * * * *"
    assert _fields(cron, cj)


def test_service_rules() -> None:
    svc = kinds.resolve("services")
    base = {"metadata": {"name": "s", "namespace": "d"},
            "spec": {"ports": [{"port": 80}, {"port": 81}], "clusterIP": "10.96.0.1"}}
    obj = defaults.apply_defaults(svc, copy.deepcopy(base))
    assert _fields(svc, obj) == ["spec.ports[0].name: Required value",
                                 "spec.ports[1].name: Required value"]
    old = defaults.apply_defaults(svc, {"metadata": {"name": "s", "namespace": "d"},
                                        "spec": {"ports": [{"port": 80}],
                                                 "clusterIP": "10.96.0.1",
                                                 "clusterIPs": ["10.96.0.1"]}})
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.2"
    new["spec"]["clusterIPs"] = ["10.96.0.2"]
    assert _fields(svc, new, old) == ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.2"}: '
                                      'may not change once set']
    assert "spec.ports: Required value" in _fields(svc, defaults.apply_defaults(
        svc, {"metadata": {"name": "s", "namespace": "d"}, "spec": {}}))


def test_configmap_secret_immutable() -> None:
    cm = kinds.resolve("configmaps")
    old = {"metadata": {"name": "c", "namespace": "d"}, "data": {"a": "1"}, "immutable": True}
    new = {**old, "data": {"a": "2"}}
    assert _fields(cm, new, old) == ["data: Forbidden: field is immutable when `immutable` is set"]
    assert _fields(cm, {"metadata": {"name": "c", "namespace": "d"}, "data": {"bad key": "1"}})
    secret = kinds.resolve("secrets")
    tls = {"metadata": {"name": "t", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {}}
    assert _fields(secret, tls) == ["data[tls.crt]: Required value",
                                    "data[tls.key]: Required value"]


def test_rbac_rules() -> None:
    rb = kinds.resolve("rolebindings")
    got = _fields(rb, {"metadata": {"name": "b", "namespace": "d"},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Bogus",
                                   "name": "r"},
                       "subjects": [{"kind": "User"}]})
    assert ('roleRef.kind: Unsupported value: "Bogus": supported values: "Role", "ClusterRole"'
            in got)
    assert "subjects[0].name: Required value" in got
    role = kinds.resolve("roles")
    assert _fields(role, {"metadata": {"name": "r", "namespace": "d"}, "rules": [{}]})[0] == (
        "rules[0].verbs: Required value: verbs must contain at least one value")


def test_unknown_fields_and_strict_error() -> None:
    d = _deploy()
    d["spec"]["bogus"] = 1
    d["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    d["metadata"]["labels"] = {"any": "key"}
    got = validation.unknown_fields(DEPLOY, d)
    assert sorted(got) == ['unknown field "spec.bogus"',
                           'unknown field "spec.template.spec.containers[0].imagee"']
    err = validation.strict_decoding_error(DEPLOY, got)
    assert err.code == 400 and err.message.startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: ')
    assert validation.unknown_fields(DEPLOY, _deploy()) == []


def test_non_dict_input_is_a_field_error() -> None:
    assert validation.validate(POD, "nope") == [
        Cause("", "FieldValueTypeInvalid", 'Invalid value: "nope": must be of type object')]
    assert validation.validate(POD, {"metadata": {"name": "p", "namespace": "d"},
                                     "spec": "x"})


def test_affinity_and_topology_spread() -> None:
    affinity = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["a"]},
                                  {"key": "zone", "operator": "In"}],
             "matchFields": [{"key": "metadata.name", "operator": "In",
                              "values": ["a", "b"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 0, "preference": {"matchExpressions": [
                {"key": "zone", "operator": "Exists"}]}}]},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"a": "b"}}}]}}
    got = _fields(POD, _pod(affinity=affinity, topologySpreadConstraints=[
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]))
    base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    assert f'{base}.nodeSelectorTerms[0].matchExpressions[0].values[0]: Invalid value: "a": ' \
           "must be an integer" in got
    assert any(f.startswith(f"{base}.nodeSelectorTerms[0].matchExpressions[1].values: "
                            "Required value") for f in got)
    assert any(f.startswith(f"{base}.nodeSelectorTerms[0].matchFields[0].values") for f in got)
    assert any("preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0"
               in f for f in got)
    assert any("podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: "
               "Required value" in f for f in got)
    assert "spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than " \
           "zero" in got
    assert any(f.startswith('spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported '
                            'value: "Maybe"') for f in got)
    good = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt",
                                                     "values": ["4"]}]}]}}}
    assert _fields(POD, _pod(affinity=good)) == []


def test_decode_errors_name_the_go_field() -> None:
    from tinykube.api import decoding
    d = _deploy()
    d["spec"]["replicas"] = True
    err = decoding.decode_error(DEPLOY, d)
    assert err is not None and err.code == 400
    assert err.message == ('Deployment in version "v1" cannot be handled as a Deployment: json: '
                           'cannot unmarshal bool into Go struct field DeploymentSpec.spec.'
                           'replicas of type int32')
    d = _deploy()
    d["spec"]["template"]["spec"]["containers"][0]["image"] = 5
    assert decoding.decode_error(DEPLOY, d).message.endswith(
        "Go struct field Container.spec.template.spec.containers.image of type string")
    assert decoding.decode_error(DEPLOY, _deploy()) is None
    quantity_ok = _pod()
    quantity_ok["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 1, "memory": "1Gi"}}
    assert decoding.type_problems(POD, quantity_ok) == []
    assert validation.validate(DEPLOY, {**_deploy(), "spec": {"replicas": "3"}})[0].reason == \
        "FieldValueTypeInvalid"


def test_no_new_finalizers_while_deleting() -> None:
    cm = kinds.resolve("configmaps")
    old = {"metadata": {"name": "c", "namespace": "d", "finalizers": ["a/x"],
                        "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"].append("b/y")
    assert _fields(cm, new, old) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being '
        'deleted, found new finalizers []string{"b/y"}']
    removed = copy.deepcopy(old)
    removed["metadata"]["finalizers"] = []
    assert _fields(cm, removed, old) == []
