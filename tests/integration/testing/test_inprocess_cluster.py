"""The in-process cluster runs a Deployment end to end: controllers, scheduler, nodes."""

from tinykube.api import pods
from tinykube.testing import cluster

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        },
    },
}


async def test_deployment_becomes_available_on_hollow_nodes():
    async with cluster(nodes=2) as c:
        await c.apply(DEPLOYMENT)
        deployment = await c.wait_for(
            "deployments", "web", lambda d: (d.get("status") or {}).get("availableReplicas") == 3,
            group="apps")
        assert deployment["status"]["readyReplicas"] == 3
        listed = await c.resource("pods").list(namespace="default", label_selector="app=web")
        assert len(listed["items"]) == 3
        assert all(pods.is_ready(pod) for pod in listed["items"])
        assert {pod["spec"]["nodeName"] for pod in listed["items"]} <= {"node-0", "node-1"}
