"""DefaultBinder posts a Binding; failures become Error statuses."""

from tinykube.api.errors import ApiError
from tinykube.scheduler.framework import Code, CycleState
from tinykube.scheduler.nodeinfo import PodInfo
from tinykube.scheduler.plugins.default_binder import DefaultBinder, binding_for
from tinykube.scheduler.testutil import make_pod


class FakePods:
    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    async def create_subresource(self, name, sub, body, *, namespace=None):
        self.calls.append((name, sub, body, namespace))
        if self.fail:
            raise self.fail
        return {}


class FakeClient:
    def __init__(self, pods):
        self.pods = pods

    def resource(self, name, group=None):
        assert name == "pods"
        return self.pods


class Handle:
    def __init__(self, pods):
        self.client = FakeClient(pods)


async def test_binding_body_and_call():
    pods = FakePods()
    pod = PodInfo(make_pod("web", "ns1"))
    assert await DefaultBinder(Handle(pods)).bind(CycleState(), pod, "n1") is None
    name, sub, body, ns = pods.calls[0]
    assert (name, sub, ns) == ("web", "binding", "ns1")
    assert body == binding_for(pod, "n1")
    assert body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "n1"}


async def test_binding_failure_is_error_status():
    pods = FakePods(ApiError(409, "Conflict", 'pod web is already assigned to node "n2"'))
    status = await DefaultBinder(Handle(pods)).bind(CycleState(), PodInfo(make_pod("web")),
                                                    "n1")
    assert status.code == Code.ERROR and "already assigned" in status.message
