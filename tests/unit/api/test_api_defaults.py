"""Defaulting matches upstream's defaulters."""

from tinykube.api import defaults, kinds


def _info(name: str):
    return kinds.resolve(name)


def _pod(**container) -> dict:
    return {"metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", **container}]}}


def test_pod_spec_defaults() -> None:
    pod = defaults.apply_defaults(_info("pods"), _pod(image="nginx", ports=[{"containerPort": 80}],
                                                      resources={"limits": {"cpu": "1"}}))
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler" and spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert "priority" not in spec and "tolerations" not in spec, "admission sets these"
    c = spec["containers"][0]
    assert c["imagePullPolicy"] == "Always"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["ports"][0]["protocol"] == "TCP"
    assert c["resources"]["requests"] == {"cpu": "1"}


def test_image_pull_policy() -> None:
    assert defaults.image_pull_policy("nginx") == "Always"
    assert defaults.image_pull_policy("nginx:latest") == "Always"
    assert defaults.image_pull_policy("nginx:1.25") == "IfNotPresent"
    assert defaults.image_pull_policy("localhost:5000/app") == "Always"
    assert defaults.image_pull_policy("repo/app@sha256:abc") == "IfNotPresent"


def test_defaulting_is_idempotent_and_keeps_user_values() -> None:
    pod = _pod(image="busybox:1", imagePullPolicy="Never")
    pod["spec"]["restartPolicy"] = "Never"
    once = defaults.apply_defaults(_info("pods"), pod)
    import copy
    twice = defaults.apply_defaults(_info("pods"), copy.deepcopy(once))
    assert once == twice
    assert once["spec"]["restartPolicy"] == "Never"
    assert once["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_deployment_defaults_and_template_only_gets_template_defaults() -> None:
    d = {"metadata": {"name": "d", "namespace": "n"}, "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "nginx:1", "resources": {"limits": {"cpu": "1"}}}]}}}}
    defaults.apply_defaults(_info("deployments"), d)
    spec = d["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    tspec = spec["template"]["spec"]
    assert tspec["restartPolicy"] == "Always"
    assert "enableServiceLinks" not in tspec and "tolerations" not in tspec
    assert "requests" not in tspec["containers"][0]["resources"]


def test_recreate_strategy_has_no_rolling_update() -> None:
    d = {"spec": {"strategy": {"type": "Recreate"}, "template": {"spec": {"containers": []}}}}
    defaults.apply_defaults(_info("deployments"), d)
    assert d["spec"]["strategy"] == {"type": "Recreate"}


def test_service_defaults() -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    defaults.apply_defaults(_info("services"), svc)
    spec = svc["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert spec["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilyPolicy"] == "SingleStack" and spec["ipFamilies"] == ["IPv4"]
    lb = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": "http"}]}}
    defaults.apply_defaults(_info("services"), lb)
    assert lb["spec"]["externalTrafficPolicy"] == "Cluster"
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    assert lb["spec"]["ports"][0]["targetPort"] == "http"


def test_job_and_cronjob_defaults() -> None:
    job = {"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}}}}
    defaults.apply_defaults(_info("jobs"), job)
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}
    assert spec["template"]["metadata"]["labels"]["job-name"] == "j"
    cj = {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "x"}]}}}}}}
    defaults.apply_defaults(_info("cronjobs"), cj)
    assert cj["spec"]["concurrencyPolicy"] == "Allow"
    assert cj["spec"]["successfulJobsHistoryLimit"] == 3
    assert cj["spec"]["failedJobsHistoryLimit"] == 1


def test_other_kinds() -> None:
    ns = defaults.apply_defaults(_info("namespaces"), {"metadata": {"name": "team"}})
    assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team"
    assert defaults.apply_defaults(_info("secrets"), {})["type"] == "Opaque"
    pvc = defaults.apply_defaults(_info("pvc"), {"spec": {}})
    assert pvc["spec"]["volumeMode"] == "Filesystem" and pvc["status"]["phase"] == "Pending"
    ds = defaults.apply_defaults(_info("ds"), {"spec": {"template": {"spec": {}}}})
    assert ds["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
    sts = defaults.apply_defaults(_info("sts"), {"spec": {"template": {"spec": {}}}})
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    assert sts["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 0}
    rs = defaults.apply_defaults(_info("rs"), {"spec": {}})
    assert rs["spec"]["replicas"] == 1
    node = defaults.apply_defaults(_info("nodes"), {"status": {"capacity": {"cpu": "2"}}})
    assert node["status"]["allocatable"] == {"cpu": "2"}


def test_volume_defaults() -> None:
    pod = _pod(image="x")
    pod["spec"]["volumes"] = [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}]
    defaults.apply_defaults(_info("pods"), pod)
    vols = pod["spec"]["volumes"]
    assert vols[0]["emptyDir"] == {} and vols[1]["configMap"]["defaultMode"] == 420


def test_malformed_input_is_left_for_validation() -> None:
    assert defaults.apply_defaults(_info("pods"), {"spec": "oops"}) == {"spec": "oops"}


def test_quantities_are_canonicalised() -> None:
    pod = _pod(image="x", resources={"requests": {"cpu": "1000m", "memory": "1024Mi"},
                                     "limits": {"cpu": 2, "memory": "bogus"}})
    defaults.apply_defaults(_info("pods"), pod)
    res = pod["spec"]["containers"][0]["resources"]
    assert res["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert res["limits"] == {"cpu": "2", "memory": "bogus"}, "invalid values stay for validation"
    node = defaults.apply_defaults(_info("nodes"), {"status": {"capacity": {"cpu": "4000m"}}})
    assert node["status"]["capacity"] == {"cpu": "4"} == node["status"]["allocatable"]
    quota = defaults.apply_defaults(_info("quota"), {"spec": {"hard": {"requests.cpu": "0.5"}}})
    assert quota["spec"]["hard"] == {"requests.cpu": "500m"}


def test_secret_string_data_is_merged_into_data() -> None:
    secret = {"data": {"a": "b2xk", "keep": "eA=="}, "stringData": {"a": "new", "b": "hi"}}
    defaults.apply_defaults(_info("secrets"), secret)
    assert secret == {"type": "Opaque", "data": {"a": "bmV3", "keep": "eA==", "b": "aGk="}}
