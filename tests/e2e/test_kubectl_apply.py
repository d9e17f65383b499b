"""kubectl apply/get/describe/diff against tinykube, and its errors on bad input."""

import pytest

pytestmark = pytest.mark.kubectl

NS = "demo"


async def _apply_web_app(kubectl, examples, *extra):
    await kubectl.run("create", "namespace", NS)
    return await kubectl.run("apply", "-n", NS, "-f", str(examples / "web-app.yaml"), *extra)


async def test_client_side_apply_creates_then_reports_unchanged(kubectl, examples):
    out = (await _apply_web_app(kubectl, examples)).stdout.splitlines()
    assert out == ["configmap/web-config created", "deployment.apps/web created",
                   "service/web-service created"]
    again = await kubectl.run("apply", "-n", NS, "-f", str(examples / "web-app.yaml"))
    assert again.stdout.splitlines() == ["configmap/web-config unchanged",
                                         "deployment.apps/web unchanged",
                                         "service/web-service unchanged"]
    deploy = await kubectl.json("get", "deployment", "web", "-n", NS)
    annotations = deploy["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations
    assert deploy["spec"]["replicas"] == 2
    assert deploy["metadata"]["generation"] == 1


async def test_server_side_apply(kubectl, examples):
    out = (await _apply_web_app(kubectl, examples, "--server-side")).stdout.splitlines()
    assert out == ["configmap/web-config serverside-applied",
                   "deployment.apps/web serverside-applied",
                   "service/web-service serverside-applied"]
    cm = await kubectl.json("get", "configmap", "web-config", "-n", NS, "--show-managed-fields")
    managers = {m["manager"]: m for m in cm["metadata"]["managedFields"]}
    assert "f:greeting" in managers["kubectl"]["fieldsV1"]["f:data"]
    assert "last-applied-configuration" not in str(cm["metadata"].get("annotations"))
    # Applying the same manifests again changes nothing (list-map keys such as a port's
    # defaulted protocol match the live items).
    again = (await kubectl.run("apply", "-n", NS, "-f", str(examples / "web-app.yaml"),
                               "--server-side")).stdout.splitlines()
    assert again == out
    service = await kubectl.json("get", "service", "web-service", "-n", NS)
    assert len(service["spec"]["ports"]) == 1
    deploy = await kubectl.json("get", "deployment", "web", "-n", NS)
    assert deploy["metadata"]["generation"] == 1


async def test_server_side_apply_records_an_apply_operation(kubectl, examples):
    await _apply_web_app(kubectl, examples, "--server-side")
    cm = await kubectl.json("get", "configmap", "web-config", "-n", NS, "--show-managed-fields")
    managers = {m["manager"]: m for m in cm["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"


async def test_apply_changes_spec_and_bumps_generation(kubectl, examples, tmp_path):
    await _apply_web_app(kubectl, examples)
    changed = (examples / "web-app.yaml").read_text().replace("replicas: 2", "replicas: 4")
    manifest = tmp_path / "web-app.yaml"
    manifest.write_text(changed)
    out = (await kubectl.run("apply", "-n", NS, "-f", str(manifest))).stdout.splitlines()
    assert "deployment.apps/web configured" in out
    assert "configmap/web-config unchanged" in out
    deploy = await kubectl.json("get", "deployment", "web", "-n", NS)
    assert deploy["spec"]["replicas"] == 4
    assert deploy["metadata"]["generation"] == 2


async def test_get_table_columns(kubectl, examples):
    await _apply_web_app(kubectl, examples)
    await kubectl.run("apply", "-n", NS, "-f", str(examples / "pod.yaml"))
    cases = {
        "pods": ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "deployments": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "services": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        "configmaps": ["NAME", "DATA", "AGE"],
    }
    for resource, columns in cases.items():
        out = (await kubectl.run("get", resource, "-n", NS)).stdout
        assert kubectl.header(out) == columns, (resource, out)
    pod = kubectl.table((await kubectl.run("get", "pod", "nginx", "-n", NS)).stdout)[1]
    assert pod[:4] == ["nginx", "0/1", "Pending", "0"]
    cm = kubectl.table((await kubectl.run("get", "cm", "web-config", "-n", NS)).stdout)[1]
    assert cm[:2] == ["web-config", "2"]
    svc = kubectl.table((await kubectl.run("get", "svc", "web-service", "-n", NS)).stdout)[1]
    assert svc[1] == "ClusterIP" and svc[4] == "80/TCP"
    wide = (await kubectl.run("get", "pods", "-n", NS, "-o", "wide")).stdout
    assert kubectl.header(wide) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                                    "NOMINATED", "NODE", "READINESS", "GATES"]
    assert kubectl.table(wide)[1][5:7] == ["<none>", "<none>"]
    svc_wide = (await kubectl.run("get", "svc", "-n", NS, "-o", "wide")).stdout
    assert kubectl.header(svc_wide)[-1] == "SELECTOR"
    ns = (await kubectl.run("get", "namespaces")).stdout
    assert kubectl.header(ns) == ["NAME", "STATUS", "AGE"]
    assert ["demo", "Active"] == next(r for r in kubectl.table(ns) if r[0] == NS)[:2]


async def test_get_all_uses_categories(kubectl, examples):
    await _apply_web_app(kubectl, examples)
    out = (await kubectl.run("get", "all", "-n", NS, "-o", "name")).stdout.split()
    assert "deployment.apps/web" in out and "service/web-service" in out
    assert "configmap/web-config" not in out  # configmaps are not in the "all" category


async def test_get_nodes_columns(kubectl, tmp_path):
    node = tmp_path / "node.yaml"
    node.write_text("apiVersion: v1\nkind: Node\nmetadata:\n  name: worker-1\n"
                    "  labels:\n    node-role.kubernetes.io/worker: ''\n")
    await kubectl.run("create", "-f", str(node))
    out = (await kubectl.run("get", "nodes")).stdout
    assert kubectl.header(out) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    row = kubectl.table(out)[1]
    assert row[0] == "worker-1" and row[2] == "worker"


async def test_get_output_formats(kubectl, examples):
    await _apply_web_app(kubectl, examples)
    as_yaml = await kubectl.yaml("get", "deployment", "web", "-n", NS)
    assert as_yaml["kind"] == "Deployment" and as_yaml["metadata"]["namespace"] == NS
    as_json = await kubectl.json("get", "configmaps", "-n", NS)
    assert as_json["kind"] == "List"
    assert "web-config" in [i["metadata"]["name"] for i in as_json["items"]]
    jsonpath = await kubectl.run("get", "deployment", "web", "-n", NS,
                                 "-o", "jsonpath={.spec.replicas} {.spec.template.spec."
                                 "containers[0].image}")
    assert jsonpath.stdout == "2 nginx:1.27"
    wide = (await kubectl.run("get", "deployment", "-n", NS, "-o", "wide")).stdout
    assert kubectl.header(wide) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE",
                                    "CONTAINERS", "IMAGES", "SELECTOR"]
    assert kubectl.table(wide)[1][5:] == ["nginx", "nginx:1.27", "app=web"]
    names = (await kubectl.run("get", "svc,cm", "-n", NS, "-l", "app=web", "-o", "name"))
    assert names.stdout.split() == ["service/web-service", "configmap/web-config"]


async def test_describe_deployment(kubectl, examples):
    await _apply_web_app(kubectl, examples)
    out = (await kubectl.run("describe", "deployment", "web", "-n", NS)).stdout
    assert out.startswith("Name:")
    for expected in ("web", f"Namespace:              {NS}", "Selector:", "app=web",
                     "Replicas:", "nginx:1.27"):
        assert expected in out, expected
    svc = (await kubectl.run("describe", "service", "web-service", "-n", NS)).stdout
    assert "Type:" in svc and "ClusterIP" in svc and "80/TCP" in svc


async def test_diff_shows_changes_and_exit_codes(kubectl, examples, tmp_path):
    await _apply_web_app(kubectl, examples)
    same = await kubectl.run("diff", "-n", NS, "-f", str(examples / "web-app.yaml"),
                             check=False)
    assert same.returncode == 0, same.stderr
    manifest = tmp_path / "web-app.yaml"
    manifest.write_text((examples / "web-app.yaml").read_text().replace("greeting: hello",
                                                                       "greeting: bonjour"))
    changed = await kubectl.run("diff", "-n", NS, "-f", str(manifest), check=False)
    assert changed.returncode == 1, changed.stderr
    assert "-  greeting: hello" in changed.stdout
    assert "+  greeting: bonjour" in changed.stdout
    cm = await kubectl.json("get", "configmap", "web-config", "-n", NS)
    assert cm["data"]["greeting"] == "hello"  # diff is a dry run


async def test_unknown_field_is_a_strict_decoding_error(kubectl, examples):
    proc = await kubectl.fails("apply", "-f", str(examples / "bad-unknown-field.yaml"))
    assert 'strict decoding error: unknown field "spec.replica"' in proc.stderr
    await kubectl.fails("get", "deployment", "typo")


async def test_invalid_name_is_a_422(kubectl, examples):
    proc = await kubectl.fails("create", "-f", str(examples / "bad-name.yaml"))
    assert ('The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters") in proc.stderr


async def test_not_found_message(kubectl):
    proc = await kubectl.fails("get", "configmap", "missing")
    assert 'Error from server (NotFound): configmaps "missing" not found' in proc.stderr


async def test_not_found_in_missing_namespace(kubectl):
    # the API names the object; kubectl then looks the namespace up and reports that
    raw = await kubectl.fails("get", "--raw", "/api/v1/namespaces/nowhere/pods/p")
    assert 'Error from server (NotFound): pods "p" not found' in raw.stderr
    proc = await kubectl.fails("get", "pods", "-n", "nowhere", "p")
    assert 'Error from server (NotFound): namespaces "nowhere" not found' in proc.stderr
