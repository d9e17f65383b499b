"""kubectl's mutating verbs: label, annotate, patch (three types), scale, delete --wait."""

import asyncio

import pytest

pytestmark = pytest.mark.kubectl


async def _config_map(kubectl, name="settings", *extra):
    await kubectl.run("create", "configmap", name, "--from-literal=greeting=hello", *extra)


async def test_label_and_annotate(kubectl):
    await _config_map(kubectl)
    out = await kubectl.run("label", "configmap", "settings", "tier=frontend")
    assert out.stdout.strip() == "configmap/settings labeled"
    out = await kubectl.run("annotate", "configmap", "settings", "owner=team-a")
    # kubectl itself prints "annotate" (not "annotated") in these versions
    assert out.stdout.strip() in ("configmap/settings annotated", "configmap/settings annotate")
    cm = await kubectl.json("get", "configmap", "settings")
    assert cm["metadata"]["labels"] == {"tier": "frontend"}
    assert cm["metadata"]["annotations"]["owner"] == "team-a"
    selected = await kubectl.run("get", "cm", "-l", "tier=frontend", "-o", "name")
    assert selected.stdout.split() == ["configmap/settings"]
    refused = await kubectl.fails("label", "configmap", "settings", "tier=backend")
    assert "'tier' already has a value (frontend), and --overwrite is false" in refused.stderr
    await kubectl.run("label", "configmap", "settings", "tier=backend", "--overwrite")
    cm = await kubectl.json("get", "configmap", "settings")
    assert cm["metadata"]["labels"] == {"tier": "backend"}
    await kubectl.run("label", "configmap", "settings", "tier-")
    cm = await kubectl.json("get", "configmap", "settings")
    assert "tier" not in (cm["metadata"].get("labels") or {})


async def test_patch_types(kubectl, examples):
    await kubectl.run("apply", "-f", str(examples / "web-app.yaml"))
    out = await kubectl.run("patch", "deployment", "web", "-p",
                            '{"spec":{"template":{"spec":{"containers":'
                            '[{"name":"nginx","image":"nginx:1.28"}]}}}}')
    assert out.stdout.strip() == "deployment.apps/web patched"
    deploy = await kubectl.json("get", "deployment", "web")
    containers = deploy["spec"]["template"]["spec"]["containers"]
    # strategic merge by name keeps the other fields of the container
    assert containers[0]["image"] == "nginx:1.28" and containers[0]["ports"]
    out = await kubectl.run("patch", "configmap", "web-config", "--type", "merge", "-p",
                            '{"data":{"log_level":null,"extra":"1"}}')
    assert out.stdout.strip() == "configmap/web-config patched"
    cm = await kubectl.json("get", "configmap", "web-config")
    assert cm["data"] == {"greeting": "hello", "extra": "1"}
    out = await kubectl.run("patch", "configmap", "web-config", "--type", "json", "-p",
                            '[{"op":"replace","path":"/data/greeting","value":"hi"},'
                            '{"op":"add","path":"/metadata/labels/patched","value":"yes"}]')
    assert out.stdout.strip() == "configmap/web-config patched"
    cm = await kubectl.json("get", "configmap", "web-config")
    assert cm["data"]["greeting"] == "hi" and cm["metadata"]["labels"]["patched"] == "yes"
    noop = await kubectl.run("patch", "configmap", "web-config", "--type", "merge", "-p",
                             '{"data":{"greeting":"hi"}}')
    assert noop.stdout.strip() == "configmap/web-config patched (no change)"
    bad = await kubectl.fails("patch", "configmap", "web-config", "--type", "json", "-p",
                              '[{"op":"remove","path":"/data/missing"}]')
    assert "remove operation does not apply: doc is missing key: /data/missing" in bad.stderr


async def test_scale(kubectl, examples):
    await kubectl.run("apply", "-f", str(examples / "web-app.yaml"))
    out = await kubectl.run("scale", "deployment", "web", "--replicas=5")
    assert out.stdout.strip() == "deployment.apps/web scaled"
    deploy = await kubectl.json("get", "deployment", "web")
    assert deploy["spec"]["replicas"] == 5
    proc = await kubectl.fails("scale", "deployment", "web", "--current-replicas=2",
                               "--replicas=3")
    assert "Expected replicas to be 2, was 5" in proc.stderr


async def test_delete_waits_for_finalizer(kubectl, apiserver, tmp_path):
    manifest = tmp_path / "held.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n"
                        "  finalizers: [example.com/hold]\ndata:\n  k: v\n")
    await kubectl.run("create", "-f", str(manifest))
    client = apiserver.client()
    async with client:
        configmaps = client.resource("configmaps")
        listed = await configmaps.list(namespace="default")
        deleting = kubectl.popen("delete", "configmap", "held", "--wait", "--timeout=30s")
        try:
            async def marked() -> None:
                async for event_type, obj in configmaps.watch(
                        namespace="default",
                        resource_version=listed["metadata"]["resourceVersion"]):
                    if obj["metadata"]["name"] == "held" and \
                            obj["metadata"].get("deletionTimestamp"):
                        return

            await asyncio.wait_for(marked(), 20)
            assert deleting.poll() is None, "kubectl returned before the finalizer went"
            await kubectl.run("patch", "configmap", "held", "--type", "merge", "-p",
                              '{"metadata":{"finalizers":null}}')
            out, err = await asyncio.wait_for(asyncio.to_thread(deleting.communicate), 30)
        finally:
            kubectl.stop(deleting)
    assert deleting.returncode == 0, err
    assert out.strip() == 'configmap "held" deleted'
    await kubectl.fails("get", "configmap", "held")


async def test_delete_by_label_and_all(kubectl):
    await _config_map(kubectl, "a")
    await _config_map(kubectl, "b")
    await kubectl.run("label", "configmap", "a", "b", "group=x")
    out = await kubectl.run("delete", "configmap", "-l", "group=x")
    assert sorted(out.stdout.splitlines()) == ['configmap "a" deleted', 'configmap "b" deleted']
    left = await kubectl.run("get", "configmap", "-l", "group=x", "-o", "name")
    assert left.stdout.strip() == ""


async def test_typed_creates_keep_inline_fields(kubectl):
    """kubectl's typed ``create`` commands send protobuf from 1.33 on; fields Go embeds
    inline (an Ingress rule's value, a volume's source) must arrive as in JSON."""
    await kubectl.run("create", "ingress", "shop", "--rule=shop.example.com/cart=cart:80")
    rule = (await kubectl.json("get", "ingress", "shop"))["spec"]["rules"][0]
    assert rule["host"] == "shop.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "cart", "port": {"number": 80}}
    await kubectl.run("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", "--", "true")
    assert (await kubectl.json("get", "cronjob", "tick"))["spec"]["schedule"] == "*/5 * * * *"
