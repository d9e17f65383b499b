"""kubectl get renders the server's Tables for every kind with upstream's headers."""

import pytest

pytestmark = pytest.mark.kubectl

POD_SPEC = {"containers": [{"name": "c", "image": "busybox:1.36"}]}
TEMPLATE = {"metadata": {"labels": {"app": "t"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "t"}}

OBJECTS = [
    ("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                    "data": {"a": "1"}}, ["NAME", "DATA", "AGE"]),
    ("secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"},
                 "stringData": {"a": "1"}}, ["NAME", "TYPE", "DATA", "AGE"]),
    ("replicasets", {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "x"},
                     "spec": {"replicas": 0, "selector": SELECTOR, "template": TEMPLATE}},
     ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]),
    ("daemonsets", {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "x"},
                    "spec": {"selector": SELECTOR, "template": TEMPLATE}},
     ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
      "AGE"]),
    ("statefulsets", {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
                      "spec": {"replicas": 0, "selector": SELECTOR, "serviceName": "x",
                               "template": TEMPLATE}}, ["NAME", "READY", "AGE"]),
    ("jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
              "spec": {"suspend": True, "template": {"spec": {**POD_SPEC,
                                                              "restartPolicy": "Never"}}}},
     ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]),
    ("cronjobs", {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"},
                  "spec": {"schedule": "*/5 * * * *", "suspend": True, "jobTemplate": {
                      "spec": {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}}}},
     ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]),
    ("persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                "metadata": {"name": "x"},
                                "spec": {"accessModes": ["ReadWriteOnce"],
                                         "resources": {"requests": {"storage": "1Gi"}}}},
     ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
      "VOLUMEATTRIBUTESCLASS", "AGE"]),
    ("priorityclasses", {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                         "metadata": {"name": "x"}, "value": 10},
     ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]),
    ("poddisruptionbudgets", {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                              "metadata": {"name": "x"},
                              "spec": {"minAvailable": 1, "selector": SELECTOR}},
     ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]),
    ("roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "x"},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
     ["NAME", "CREATED", "AT"]),
    ("rolebindings", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                      "metadata": {"name": "x"},
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "x"},
                      "subjects": [{"kind": "User", "name": "bob"}]},
     ["NAME", "ROLE", "AGE"]),
    ("leases", {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "x"}, "spec": {"holderIdentity": "me"}},
     ["NAME", "HOLDER", "AGE"]),
    ("endpointslices", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"name": "x"}, "addressType": "IPv4",
                        "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]},
     ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]),
    ("networkpolicies", {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                         "metadata": {"name": "x"}, "spec": {"podSelector": {}}},
     ["NAME", "POD-SELECTOR", "AGE"]),
    ("resourcequotas", {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "x"},
                        "spec": {"hard": {"pods": "10"}}}, ["NAME", "AGE", "REQUEST", "LIMIT"]),
    ("horizontalpodautoscalers", {"apiVersion": "autoscaling/v2",
                                  "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
                                  "spec": {"scaleTargetRef": {"apiVersion": "apps/v1",
                                                              "kind": "Deployment",
                                                              "name": "x"},
                                           "maxReplicas": 3}},
     ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]),
]


async def test_get_headers_for_every_kind(kubectl):
    """One server for all kinds: create each object, then check ``kubectl get`` headers."""
    import json
    manifest = json.dumps({"apiVersion": "v1", "kind": "List",
                           "items": [obj for _, obj, _ in OBJECTS]})
    await kubectl.run("create", "-f", "-", input=manifest)
    for resource, _, header in OBJECTS:
        out = (await kubectl.run("get", resource, "x")).stdout
        assert kubectl.header(out) == header, resource
        assert kubectl.table(out)[1][0] == "x", resource
