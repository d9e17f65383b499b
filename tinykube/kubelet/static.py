"""Static pods: pods read from manifest files, run without the API server, mirrored to it.

As upstream's file source: every YAML file in ``--pod-manifest-path`` holds a Pod; its uid
is a hash of the manifest and node name, its name gets ``-<nodename>``, and the kubelet runs
it at once. A mirror pod with the annotations ``kubernetes.io/config.mirror`` and
``kubernetes.io/config.source: file`` and an ownerReference to the Node shows it in the
API; the kubelet keeps (re)creating it until the API server accepts it.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from typing import Any

import orjson
import yaml

from tinykube.api import meta

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
HASH_ANNOTATION = "kubernetes.io/config.hash"
SOURCE_ANNOTATION = "kubernetes.io/config.source"
SEEN_ANNOTATION = "kubernetes.io/config.seen"


def is_mirror_pod(pod: Obj) -> bool:
    return MIRROR_ANNOTATION in meta.annotations(pod)


def default_static_pod(pod: Obj) -> None:
    """The defaults the API server would apply, which a file-sourced pod never went through."""
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    tolerations = spec.setdefault("tolerations", [])
    if not any(t.get("operator") == "Exists" and t.get("effect") == "NoExecute" and not t.get("key") for t in tolerations):
        tolerations.append({"operator": "Exists", "effect": "NoExecute"})
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})


def static_pod_from_manifest(doc: Obj, node_name: str, source: str) -> Obj:
    """A static pod as the kubelet runs it, from one manifest."""
    if doc.get("kind") != "Pod" or doc.get("apiVersion") != "v1":
        raise ValueError(f"{source}: expected a v1 Pod, got {doc.get('apiVersion')}/{doc.get('kind')}")
    pod = copy.deepcopy(doc)
    md = pod.setdefault("metadata", {})
    if not md.get("name"):
        raise ValueError(f"{source}: metadata.name is required")
    digest = hashlib.md5(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + node_name.encode()).hexdigest()
    md["name"] = f"{md['name']}-{node_name}"
    md.setdefault("namespace", "default")
    md["uid"] = digest
    md.setdefault("creationTimestamp", meta.now())
    annotations = md.setdefault("annotations", {})
    annotations[HASH_ANNOTATION] = digest
    annotations[SOURCE_ANNOTATION] = "file"
    annotations[SEEN_ANNOTATION] = meta.now()
    default_static_pod(pod)
    pod["spec"]["nodeName"] = node_name
    pod["status"] = {"phase": "Pending"}
    return pod


def load_manifests(directory: str, node_name: str) -> tuple[dict[str, Obj], list[str]]:
    """Static pods by uid from every YAML/JSON file (hidden files skipped), and the errors."""
    pods: dict[str, Obj] = {}
    errors: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return pods, errors
    for name in names:
        path = os.path.join(directory, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d]
            for doc in docs:
                pod = static_pod_from_manifest(doc, node_name, path)
                pods[meta.uid(pod)] = pod
        except (OSError, yaml.YAMLError, ValueError, AttributeError) as exc:
            errors.append(f"could not process manifest file \"{path}\": {exc}")
    return pods, errors


def mirror_pod(pod: Obj, node: Obj | None) -> Obj:
    """The API object standing for a static pod (upstream's mirror client)."""
    mirror = copy.deepcopy(pod)
    md = mirror["metadata"]
    md.pop("uid", None)
    md.pop("resourceVersion", None)
    md.pop("creationTimestamp", None)
    md["annotations"][MIRROR_ANNOTATION] = md["annotations"][HASH_ANNOTATION]
    if node is not None and meta.uid(node):
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": meta.name(node),
                                  "uid": meta.uid(node), "controller": True}]
    mirror.pop("status", None)
    return mirror
