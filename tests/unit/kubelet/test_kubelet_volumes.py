import base64
import os

import pytest

from tinykube.kubelet.volumes import VolumeContext, VolumeError, setup_volumes


def make_ctx(tmp_path, objects=None, token="tok"):
    objects = objects or {}

    async def fetch(resource, name):
        return objects.get((resource, name))

    async def request_token(sa, audience, seconds):
        return f"{token}:{sa}:{audience}:{seconds}"

    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "1", "b": "2"}},
           "spec": {"serviceAccountName": "builder", "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]}}
    return VolumeContext(pod=pod, pod_dir=str(tmp_path), fetch=fetch, request_token=request_token)


def read(path):
    with open(path) as f:
        return f.read()


async def test_configmap_items_modes_and_atomic_layout(tmp_path):
    cm = {"data": {"app.conf": "x=1", "other": "y"}}
    ctx = make_ctx(tmp_path, {("configmaps", "cfg"): cm})
    vol = {"name": "config", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "conf/app.conf", "mode": 0o600}]}}
    paths = await setup_volumes([vol], ctx)
    root = paths["config"]
    assert root.endswith("volumes/kubernetes.io~configmap/config")
    assert read(os.path.join(root, "conf/app.conf")) == "x=1"
    assert not os.path.exists(os.path.join(root, "other"))
    assert os.path.islink(os.path.join(root, "..data"))
    assert os.stat(os.path.join(root, "conf/app.conf")).st_mode & 0o777 == 0o600
    # a second write replaces the payload atomically
    cm["data"]["app.conf"] = "x=2"
    await setup_volumes([vol], ctx)
    assert read(os.path.join(root, "conf/app.conf")) == "x=2"
    assert len([e for e in os.listdir(root) if e.startswith("..2")]) == 1


async def test_secret_decoded_with_default_mode(tmp_path):
    ctx = make_ctx(tmp_path, {("secrets", "s"): {"data": {"password": base64.b64encode(b"pw").decode()}}})
    paths = await setup_volumes([{"name": "creds", "secret": {"secretName": "s", "defaultMode": 0o400}}], ctx)
    target = os.path.join(paths["creds"], "password")
    assert read(target) == "pw"
    assert os.stat(target).st_mode & 0o777 == 0o400


async def test_missing_configmap_fails_unless_optional(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(VolumeError, match='MountVolume.SetUp failed for volume "v" : configmap "nope" not found'):
        await setup_volumes([{"name": "v", "configMap": {"name": "nope"}}], ctx)
    paths = await setup_volumes([{"name": "v", "configMap": {"name": "nope", "optional": True}}], ctx)
    assert os.listdir(paths["v"]) == [] or all(e.startswith("..") for e in os.listdir(paths["v"]))


async def test_downward_api_and_projected_service_account(tmp_path):
    ctx = make_ctx(tmp_path, {("configmaps", "kube-root-ca.crt"): {"data": {"ca.crt": "CA"}}})
    vols = [{"name": "info", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}},
            {"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}]
    paths = await setup_volumes(vols, ctx)
    assert read(os.path.join(paths["info"], "labels")) == 'a="1"\nb="2"'
    assert read(os.path.join(paths["info"], "mem")) == "64"
    sa = paths["kube-api-access"]
    assert read(os.path.join(sa, "token")) == "tok:builder:None:3607"
    assert read(os.path.join(sa, "ca.crt")) == "CA"
    assert read(os.path.join(sa, "namespace")) == "ns"


async def test_emptydir_hostpath_and_pvc(tmp_path):
    host_dir = tmp_path / "host"
    pv_dir = tmp_path / "pv"
    objects = {("persistentvolumeclaims", "data"): {"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}},
               ("persistentvolumes", "pv1"): {"spec": {"hostPath": {"path": str(pv_dir)}}}}
    ctx = make_ctx(tmp_path, objects)
    paths = await setup_volumes([{"name": "scratch", "emptyDir": {}},
                                 {"name": "host", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}},
                                 {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}], ctx)
    assert os.path.isdir(paths["scratch"]) and paths["scratch"].endswith("kubernetes.io~empty-dir/scratch")
    assert paths["host"] == str(host_dir) and host_dir.is_dir()
    assert paths["data"] == str(pv_dir) and pv_dir.is_dir()
    with pytest.raises(VolumeError, match="is not a directory"):
        await setup_volumes([{"name": "f", "hostPath": {"path": str(tmp_path / "nope"), "type": "Directory"}}], ctx)
    with pytest.raises(VolumeError, match='persistentvolumeclaim "other" not found'):
        await setup_volumes([{"name": "d", "persistentVolumeClaim": {"claimName": "other"}}], ctx)
