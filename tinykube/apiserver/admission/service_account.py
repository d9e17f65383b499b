"""ServiceAccount: every pod runs as a service account (``default`` unless named) and,
unless it opts out, gets the projected ``kube-api-access-xxxxx`` volume with a bound
token, the cluster CA and its namespace, mounted where client libraries look for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinykube.apiserver.admission import Attributes
from tinykube.apiserver.objectmeta import random_suffix

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

DEFAULT_SERVICE_ACCOUNT = "default"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
TOKEN_EXPIRATION_SECONDS = 3607
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


def token_volume(name: str) -> dict:
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                                 "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                              "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
            "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


class ServiceAccount:
    name = "ServiceAccount"

    def __init__(self, server: "APIServer"):
        self.server = server

    async def admit(self, attrs: Attributes) -> None:
        pod = attrs.created_pod()
        if pod is None:
            return
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if MIRROR_POD_ANNOTATION in annotations:
            return
        spec = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
        spec["serviceAccount"] = spec["serviceAccountName"]
        if spec.get("automountServiceAccountToken") is False:
            return
        containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        if any(m.get("mountPath") == MOUNT_PATH
               for c in containers for m in c.get("volumeMounts") or []):
            return
        volumes = spec.setdefault("volumes", [])
        existing = {v.get("name") for v in volumes}
        name = VOLUME_PREFIX + random_suffix()
        while name in existing:
            name = VOLUME_PREFIX + random_suffix()
        volumes.append(token_volume(name))
        for container in containers:
            container.setdefault("volumeMounts", []).append(
                {"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
