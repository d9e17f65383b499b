"""``kubectl get -w``: a Table list, then a watch from its resourceVersion."""

import pytest

pytestmark = pytest.mark.kubectl


async def test_get_watch_sees_a_new_object_and_a_change(kubectl):
    await kubectl.run("create", "configmap", "first", "--from-literal=a=1")
    watcher = kubectl.popen("get", "configmaps", "-w")
    try:
        lines = await kubectl.read_until(watcher, lambda l: l.startswith("first"), 20)
        assert lines[0].split() == ["NAME", "DATA", "AGE"]
        await kubectl.run("create", "configmap", "second", "--from-literal=a=1",
                          "--from-literal=b=2")
        lines = await kubectl.read_until(watcher, lambda l: l.startswith("second"), 20)
        assert lines[-1].split()[:2] == ["second", "2"]
        await kubectl.run("patch", "configmap", "first", "--type", "merge",
                          "-p", '{"data":{"b":"2","c":"3"}}')
        lines = await kubectl.read_until(watcher, lambda l: l.startswith("first"), 20)
        assert lines[-1].split()[:2] == ["first", "3"]
    finally:
        kubectl.stop(watcher)
