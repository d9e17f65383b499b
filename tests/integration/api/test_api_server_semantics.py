"""The api package through a real API server: defaults, generated Job selectors,
validation errors, patches and server-side apply as clients receive them."""

import pytest

from tinykube.api.errors import ApiError

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "default"},
       "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                      "restartPolicy": "Never"}}}}


async def test_job_gets_generated_selector_from_its_uid(apiserver):
    async with apiserver.client() as client:
        job = await client.resource("jobs").create(JOB, namespace="default")
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/controller-uid"] == uid
    assert labels["job-name"] == "j"
    assert job["spec"]["backoffLimit"] == 6 and job["spec"]["completions"] == 1


async def test_invalid_deployment_is_422_with_causes(apiserver):
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "other"}},
                                    "spec": {"containers": [{"name": "n"}]}}}}
    async with apiserver.client() as client:
        with pytest.raises(ApiError) as info:
            await client.resource("deployments").create(deploy, namespace="default")
    err = info.value
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message.startswith('Deployment.apps "web" is invalid: [')
    fields = {c["field"] for c in err.causes}
    assert {"spec.template.metadata.labels", "spec.template.spec.containers[0].image"} <= fields


async def test_strategic_patch_and_apply_conflict(apiserver):
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}}
    async with apiserver.client() as client:
        cms = client.resource("configmaps")
        await cms.create(cm, namespace="default", field_manager="creator")
        patched = await cms.patch("c", {"data": {"b": "2"}}, namespace="default")
        assert patched["data"] == {"a": "1", "b": "2"}
        applied = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c", "namespace": "default"}, "data": {"a": "9"}}
        with pytest.raises(ApiError) as info:
            await cms.patch("c", applied, namespace="default", patch_type="apply",
                            field_manager="applier")
        assert info.value.code == 409
        assert info.value.message.startswith('Apply failed with 1 conflict: conflict with '
                                             '"creator"')
        forced = await cms.patch("c", applied, namespace="default", patch_type="apply",
                                 field_manager="applier", force=True)
        assert forced["data"]["a"] == "9"
