"""The page's script renders live JSON into tables (run under node with a minimal DOM).

Skipped where node is not installed: this checks the browser side without a browser.
"""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tinykube.dashboard import Dashboard, DashboardConfig
from tinykube.dashboard.page import SCRIPT
from tinykube.testing import cluster

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Just enough DOM for app.js; prints the text of the first table-bearing render of
# #content (one line per row, cells joined by " | ") and exits.
SHIM = r"""
const [BASE, PAGE, APP] = process.argv.slice(2);
class Text_ { constructor(t) { this.text = String(t); } get textContent() { return this.text; } }
class Element_ {
  constructor(tag) { this.tag = tag; this.children = []; this.attrs = {}; this.hidden = true;
    this.classList = { toggle() {} }; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  getAttribute(k) { return this.attrs[k]; }
  addEventListener() {}
  append(...n) { this.children.push(...n); }
  prepend(...n) { this.children.unshift(...n); }
  replaceChildren(...n) { this.children = n; }
  remove() {}
  get lastChild() { return this.children[this.children.length - 1]; }
  get options() { return this.children; }
  set textContent(t) { this.children = [new Text_(t)]; }
}
const text = n => n instanceof Text_ ? n.text
  : n.tag === "tr" ? n.children.map(text).join(" | ") + "\n" : n.children.map(text).join("");
const ids = {};
for (const id of ["nav", "namespace", "live", "message", "changes"]) ids[id] = new Element_("div");
ids.content = new Element_("section");
ids.content.replaceChildren = (...n) => { console.log(n.map(text).join("\n")); process.exit(0); };
globalThis.Node = Element_;
globalThis.document = { createElement: t => new Element_(t), createTextNode: t => new Text_(t),
                        getElementById: id => ids[id], querySelectorAll: () => [] };
globalThis.location = { hash: "#" + PAGE };
globalThis.window = { addEventListener() {} };
globalThis.confirm = () => true;
globalThis.EventSource = class { addEventListener() {} };
const realFetch = fetch;
globalThis.fetch = (path, options) => realFetch(BASE + path, options);
require(APP);
"""


async def render(tmp_path, url: str, page: str) -> str:
    shim, app = tmp_path / "shim.js", tmp_path / "app.js"
    shim.write_text(SHIM)
    app.write_text(SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        NODE, str(shim), url, page, str(app), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_overview_and_workloads_render(tmp_path):
    async with cluster(nodes=1) as c:
        labels = {"app": "web"}
        await c.apply({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": [{"name": "c", "image": "nginx"}]}}}})
        await c.wait_for("deployments", "web",
                         lambda d: (d.get("status") or {}).get("readyReplicas") == 1,
                         group="apps")
        dash = Dashboard(DashboardConfig(client=c.client, port=0))
        await dash.start()
        try:
            overview = await render(tmp_path, dash.url, "overview")
            assert "1/1nodes Ready" in overview
            assert "node-0 | Ready |" in overview
            workloads = await render(tmp_path, dash.url, "workloads")
            assert "default | web | 1/1 | 1 | 1 |" in workloads
            assert "| 1/1 | Running | 0 |" in workloads
            events = await render(tmp_path, dash.url, "events")
            assert "ScalingReplicaSet | deployment/web" in events
        finally:
            await dash.stop()
