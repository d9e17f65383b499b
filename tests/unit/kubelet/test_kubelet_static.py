import pytest

from tinykube.kubelet.static import (
    HASH_ANNOTATION, MIRROR_ANNOTATION, is_mirror_pod, load_manifests, mirror_pod, static_pod_from_manifest,
)

MANIFEST = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "etcd", "namespace": "kube-system"},
            "spec": {"hostNetwork": True, "containers": [{"name": "etcd", "image": "etcd", "command": ["etcd"]}]}}


def test_static_pod_identity_and_defaults():
    pod = static_pod_from_manifest(MANIFEST, "node-1", "etcd.yaml")
    assert pod["metadata"]["name"] == "etcd-node-1"
    assert pod["spec"]["nodeName"] == "node-1"
    assert pod["metadata"]["annotations"]["kubernetes.io/config.source"] == "file"
    assert pod["metadata"]["uid"] == pod["metadata"]["annotations"][HASH_ANNOTATION]
    assert pod["spec"]["restartPolicy"] == "Always" and pod["spec"]["dnsPolicy"] == "ClusterFirst"
    assert {"operator": "Exists", "effect": "NoExecute"} in pod["spec"]["tolerations"]
    again = static_pod_from_manifest(MANIFEST, "node-1", "etcd.yaml")
    other_node = static_pod_from_manifest(MANIFEST, "node-2", "etcd.yaml")
    assert again["metadata"]["uid"] == pod["metadata"]["uid"] != other_node["metadata"]["uid"]


def test_mirror_pod_points_at_node():
    pod = static_pod_from_manifest(MANIFEST, "node-1", "etcd.yaml")
    node = {"metadata": {"name": "node-1", "uid": "node-uid"}}
    mirror = mirror_pod(pod, node)
    assert is_mirror_pod(mirror) and not is_mirror_pod(pod)
    assert mirror["metadata"]["annotations"][MIRROR_ANNOTATION] == pod["metadata"]["uid"]
    assert "uid" not in mirror["metadata"] and "status" not in mirror
    assert mirror["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "node-uid", "controller": True}]


def test_load_manifests_reports_bad_files(tmp_path):
    (tmp_path / "good.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n")
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n")
    (tmp_path / ".hidden.yaml").write_text("not: [valid")
    pods, errors = load_manifests(str(tmp_path), "n")
    assert [p["metadata"]["name"] for p in pods.values()] == ["a-n"]
    assert len(errors) == 1 and "bad.yaml" in errors[0] and "expected a v1 Pod" in errors[0]
    with pytest.raises(ValueError, match="metadata.name is required"):
        static_pod_from_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {}}, "n", "x.yaml")
