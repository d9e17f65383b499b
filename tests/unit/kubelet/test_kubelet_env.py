import base64

import pytest

from tinykube.kubelet.env import EnvError, EnvSources, expand, resolve, service_env


def pod(**spec):
    return {"metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"},
                         "annotations": {"team": "a"}},
            "spec": {"nodeName": "node-1", "serviceAccountName": "sa", **spec}}


def test_expand_references_and_escapes():
    env = {"A": "1", "B": "x"}
    assert expand("$(A)-$(B)", env) == "1-x"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("cost $5", env) == "cost $5"


def test_service_links_variables():
    svc = {"metadata": {"name": "redis-master", "namespace": "shop"},
           "spec": {"clusterIP": "10.96.0.11", "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}]}}
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 1}]}}
    env = service_env([svc, headless])
    assert env["REDIS_MASTER_SERVICE_HOST"] == "10.96.0.11"
    assert env["REDIS_MASTER_SERVICE_PORT"] == "6379"
    assert env["REDIS_MASTER_SERVICE_PORT_REDIS"] == "6379"
    assert env["REDIS_MASTER_PORT"] == "tcp://10.96.0.11:6379"
    assert env["REDIS_MASTER_PORT_6379_TCP"] == "tcp://10.96.0.11:6379"
    assert env["REDIS_MASTER_PORT_6379_TCP_PROTO"] == "tcp"
    assert env["REDIS_MASTER_PORT_6379_TCP_PORT"] == "6379"
    assert env["REDIS_MASTER_PORT_6379_TCP_ADDR"] == "10.96.0.11"
    assert not any(k.startswith("H_") for k in env)


def test_resolve_precedence_fieldrefs_and_references():
    cm = {"data": {"LEVEL": "debug", "1BAD": "skipped"}}
    secret = {"data": {"password": base64.b64encode(b"s3cret").decode()}}
    svc = {"metadata": {"name": "db"}, "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 5432}]}}
    container = {"name": "c", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                 "envFrom": [{"configMapRef": {"name": "cfg"}}, {"prefix": "S_", "secretRef": {"name": "creds"}}],
                 "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                         {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                         {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                         {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                         {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                         {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                         {"name": "LEVEL", "value": "info"},
                         {"name": "URL", "value": "postgres://$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)/$(POD)"},
                         {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}]}
    src = EnvSources(configmap={"cfg": cm}.get, secret={"creds": secret}.get, services=[svc],
                     pod_ip="10.244.0.7", host_ip="127.0.0.1")
    env = dict(resolve(pod(), container, src))
    assert env["POD"] == "web-1" and env["NS"] == "shop" and env["APP"] == "web" and env["NODE"] == "node-1"
    assert env["IP"] == "10.244.0.7"
    assert env["CPU"] == "500" and env["MEM"] == "128"
    assert env["PW"] == "s3cret" and env["S_password"] == "s3cret"
    assert env["LEVEL"] == "info"  # env wins over envFrom
    assert "1BAD" not in env
    assert env["URL"] == "postgres://10.96.0.5:5432/web-1"
    assert "OPT" not in env


def test_enable_service_links_false_keeps_master_service_only():
    svc = {"metadata": {"name": "db"}, "spec": {"clusterIP": "10.96.0.5", "ports": [{"port": 5432}]}}
    master = {"metadata": {"name": "kubernetes"}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443}]}}
    env = dict(resolve(pod(enableServiceLinks=False), {"name": "c"}, EnvSources(services=[svc], master_services=[master])))
    assert "DB_SERVICE_HOST" not in env
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"


def test_missing_references_are_errors_with_upstream_messages():
    with pytest.raises(EnvError, match='configmap "cfg" not found'):
        resolve(pod(), {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
                EnvSources())
    with pytest.raises(EnvError, match="couldn't find key k in ConfigMap shop/cfg"):
        resolve(pod(), {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]},
                EnvSources(configmap={"cfg": {"data": {}}}.get))
    with pytest.raises(EnvError, match='secret "s" not found'):
        resolve(pod(), {"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}, EnvSources())
