"""The browser side: one HTML page, its stylesheet and its script, as Python strings.

Kept as strings (not package data files) so an installed tinykube needs no data files.
The script renders the JSON of ``/api/<page>`` with DOM methods (text, never HTML, so
object names cannot inject markup), and re-reads the shown page only when the event
stream reports a change: there is no polling loop.
"""

from __future__ import annotations

HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tinykube dashboard</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header>
  <h1>tinykube</h1>
  <nav id="nav">
    <a href="#overview">Overview</a>
    <a href="#namespaces">Namespaces</a>
    <a href="#workloads">Workloads</a>
    <a href="#services">Services</a>
    <a href="#events">Events</a>
  </nav>
  <label>namespace
    <select id="namespace"><option value="">(all)</option></select>
  </label>
  <span id="live" class="live off">connecting</span>
</header>
<main>
  <section id="message" hidden></section>
  <section id="content"><p>loading...</p></section>
  <aside>
    <h2>Live changes</h2>
    <ol id="changes"></ol>
  </aside>
</main>
<script src="/app.js"></script>
</body>
</html>
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d2430; background: #f5f7fa; }
header { display: flex; gap: 1.5em; align-items: center; padding: .5em 1em;
         background: #326ce5; color: white; }
header h1 { font-size: 1.2em; margin: 0; }
nav a { color: white; margin-right: 1em; text-decoration: none; }
nav a.active { font-weight: bold; text-decoration: underline; }
main { display: grid; grid-template-columns: 1fr 22em; gap: 1em; padding: 1em; }
#message { grid-column: 1 / 3; background: #fff8d6; border: 1px solid #e5c100;
           padding: .5em 1em; }
#message.error { background: #fde7e9; border-color: #d13438; }
h2 { font-size: 1.05em; margin: 1em 0 .4em; }
table { border-collapse: collapse; width: 100%; background: white; font-size: .88em; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e1e4e8;
         vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.empty { color: #777; font-style: italic; }
.ok { color: #107c10; font-weight: 600; }
.bad { color: #d13438; font-weight: 600; }
tr.warning td { background: #fde7e9; }
.live { font-size: .8em; padding: .1em .6em; border-radius: 1em; background: #107c10; }
.live.off { background: #8a8886; }
aside { background: white; padding: .2em .8em; font-size: .8em; max-height: 85vh;
        overflow: auto; }
aside ol { padding-left: 1.2em; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { background: white; padding: .6em 1em; border: 1px solid #e1e4e8; }
.card b { font-size: 1.4em; display: block; }
input[type=number] { width: 4.5em; }
button { cursor: pointer; }
"""

SCRIPT = r"""
"use strict";
const state = { page: "overview", namespace: "", focus: null, pending: null };
const PAGES = ["overview", "namespaces", "workloads", "services", "events"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(columns, rows, rowClass) {
  const head = el("tr", {}, columns.map(([title]) => el("th", {}, title)));
  const body = rows.length ? rows.map(row => el("tr", { class: rowClass ? rowClass(row) : "" },
      columns.map(([, cell]) => {
        const value = typeof cell === "function" ? cell(row) : row[cell];
        return el("td", {}, value === undefined || value === null ? "" : value);
      })))
    : [el("tr", {}, el("td", { class: "empty", colspan: columns.length }, "none"))];
  return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
}

function resources(values) {
  return Object.entries(values || {}).map(([k, v]) => `${k}=${v}`).join(" ");
}

function ago(age) {
  return age.startsWith("<") ? age : `${age} ago`;
}

function status(text, good) {
  return el("span", { class: good ? "ok" : "bad" }, text);
}

function podStatus(row) {
  return status(row.status, row.status === "Running" || row.status === "Completed");
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}

function showMessage(text, isError) {
  const box = document.getElementById("message");
  box.hidden = false;
  box.className = isError ? "error" : "";
  box.replaceChildren(...(Array.isArray(text) ? text : [text]));
}

async function scale(row, input) {
  const replicas = Number(input.value);
  try {
    await api(`/api/namespaces/${encodeURIComponent(row.namespace)}/deployments/` +
              `${encodeURIComponent(row.name)}/scale`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ replicas }) });
    state.focus = { namespace: row.namespace, involved: `Deployment/${row.name}`,
                    title: `scaled deployment ${row.name} to ${replicas}` };
    refreshFocus();
  } catch (err) { showMessage(`scale failed: ${err.message}`, true); }
}

async function deletePod(row) {
  if (!confirm(`Delete pod ${row.namespace}/${row.name}?`)) return;
  try {
    await api(`/api/namespaces/${encodeURIComponent(row.namespace)}/pods/` +
              `${encodeURIComponent(row.name)}`, { method: "DELETE" });
    const owner = row.owner || `Pod/${row.name}`;
    state.focus = { namespace: row.namespace, involved: owner,
                    title: `deleted pod ${row.name}; events of ${owner}` };
    refreshFocus();
  } catch (err) { showMessage(`delete failed: ${err.message}`, true); }
}

async function refreshFocus() {
  const focus = state.focus;
  if (!focus) return;
  const q = new URLSearchParams({ namespace: focus.namespace, involved: focus.involved });
  const data = await api(`/api/events?${q}`);
  showMessage([el("b", {}, focus.title), " ",
               el("button", { onclick: () => { state.focus = null;
                 document.getElementById("message").hidden = true; } }, "dismiss"),
               eventsTable(data.events.slice(0, 10))]);
}

function showEventsOf(kind, row) {
  state.focus = { namespace: row.namespace, involved: `${kind}/${row.name}`,
                  title: `events of ${kind.toLowerCase()} ${row.namespace}/${row.name}` };
  refreshFocus();
}

function nameLink(kind) {
  return row => el("a", { href: "#" + state.page, title: "show its events",
                          onclick: e => { e.preventDefault(); showEventsOf(kind, row); } },
                   row.name);
}

function eventsTable(events) {
  return table([["LAST SEEN", "lastSeen"], ["NAMESPACE", "namespace"], ["TYPE", "type"],
                ["REASON", "reason"], ["OBJECT", "object"], ["MESSAGE", "message"],
                ["SOURCE", "source"], ["COUNT", "count"]],
               events, row => row.warning ? "warning" : "");
}

const RENDER = {
  overview(data) {
    const phases = Object.entries(data.podPhases).map(([phase, n]) =>
      el("div", { class: "card" }, el("b", {}, n), `pods ${phase}`));
    return [
      el("div", { class: "cards" },
         el("div", { class: "card" }, el("b", {}, `${data.nodesReady}/${data.nodes.length}`),
            "nodes Ready"), phases),
      el("h2", {}, "Nodes"),
      table([["NAME", "name"], ["STATUS", r => status(r.status, r.ready)], ["ROLES", "roles"],
             ["AGE", "age"], ["VERSION", "version"], ["INTERNAL-IP", "internalIP"],
             ["PODS", r => `${r.pods}/${r.allocatable.pods || "?"}`],
             ["HEARTBEAT", r => ago(r.heartbeat)],
             ["CAPACITY", r => resources(r.capacity)],
             ["ALLOCATABLE", r => resources(r.allocatable)],
             ["TAINTS", r => r.taints.join(", ")]], data.nodes),
      el("h2", {}, "Control plane (kube-system pods)"),
      table([["NAME", "name"], ["READY", "ready"], ["STATUS", podStatus],
             ["RESTARTS", "restarts"], ["AGE", "age"], ["NODE", "node"]], data.controlPlane),
      el("h2", {}, "Leader election (kube-system Leases)"),
      table([["NAME", "name"], ["HOLDER", "holder"], ["RENEWED", r => ago(r.renewed)]],
            data.leaders),
    ];
  },
  namespaces(data) {
    return table([["NAME", "name"], ["STATUS", r => status(r.status, r.status === "Active")],
                  ["PODS", "pods"], ["AGE", "age"]], data.namespaces);
  },
  workloads(data) {
    return [
      el("h2", {}, "Deployments"),
      table([["NAMESPACE", "namespace"], ["NAME", nameLink("Deployment")], ["READY", "ready"],
             ["UP-TO-DATE", "upToDate"], ["AVAILABLE", "available"], ["AGE", "age"],
             ["IMAGES", "images"], ["SCALE", row => {
               const input = el("input", { type: "number", min: 0, value: row.replicas });
               return el("span", {}, input,
                         el("button", { onclick: () => scale(row, input) }, "scale"));
             }]], data.deployments),
      el("h2", {}, "ReplicaSets"),
      table([["NAMESPACE", "namespace"], ["NAME", nameLink("ReplicaSet")], ["DESIRED", "desired"],
             ["CURRENT", "current"], ["READY", "ready"], ["AGE", "age"], ["OWNER", "owner"]],
            data.replicasets),
      el("h2", {}, "Pods"),
      table([["NAMESPACE", "namespace"], ["NAME", nameLink("Pod")], ["READY", "ready"],
             ["STATUS", podStatus], ["RESTARTS", "restarts"], ["AGE", "age"], ["IP", "ip"],
             ["NODE", "node"], ["OWNER", "owner"],
             ["", row => el("button", { onclick: () => deletePod(row) }, "delete")]],
            data.pods),
    ];
  },
  services(data) {
    return table([["NAMESPACE", "namespace"], ["NAME", nameLink("Service")], ["TYPE", "type"],
                  ["CLUSTER-IP", "clusterIP"], ["EXTERNAL-IP", "externalIP"],
                  ["PORT(S)", "ports"], ["SELECTOR", "selector"],
                  ["ENDPOINTS", r => r.endpoints.join(", ") || "<none>"],
                  ["NOT READY", r => r.notReadyEndpoints.join(", ")], ["AGE", "age"]],
                 data.services);
  },
  events(data) { return eventsTable(data.events); },
};

async function refreshNamespaces() {
  const select = document.getElementById("namespace");
  const data = await api("/api/namespaces");
  const names = data.namespaces.map(ns => ns.name);
  const current = Array.from(select.options).slice(1).map(o => o.value);
  if (names.join() === current.join()) return;
  select.replaceChildren(el("option", { value: "" }, "(all)"),
                         names.map(n => el("option", { value: n }, n)));
  select.value = names.includes(state.namespace) ? state.namespace : "";
}

async function refresh() {
  state.pending = null;
  const page = state.page;
  try {
    const q = new URLSearchParams(state.namespace ? { namespace: state.namespace } : {});
    const data = await api(`/api/${page}?${q}`);
    if (page !== state.page) return;
    document.getElementById("content").replaceChildren(...[RENDER[page](data)].flat());
    await refreshNamespaces();
    await refreshFocus();
  } catch (err) {
    showMessage(`could not load ${page}: ${err.message}`, true);
  }
}

function scheduleRefresh() {
  if (state.pending === null) state.pending = setTimeout(refresh, 500);  // at most 2/s
}

function showPage() {
  const page = location.hash.slice(1);
  state.page = PAGES.includes(page) ? page : "overview";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#${state.page}`);
  }
  refresh();
}

function noteChange(change) {
  if (change.resource === "leases") return;  // heartbeats: shown as ages, not as news
  const list = document.getElementById("changes");
  const row = change.row;
  const where = change.namespace ? `${change.namespace}/` : "";
  const text = change.resource === "events"
    ? `${row.type} ${row.reason} ${row.object}: ${row.message}`
    : `${change.type.toLowerCase()} ${change.resource} ${where}${change.name} ${row.status || ""}`;
  const item = el("li", { class: row.warning ? "bad" : "" }, text);
  list.prepend(item);
  while (list.children.length > 50) list.lastChild.remove();
}

function connect() {
  const live = document.getElementById("live");
  const stream = new EventSource("/api/stream");
  stream.addEventListener("hello", () => {
    live.textContent = "live"; live.className = "live"; refresh();
  });
  stream.addEventListener("change", e => { noteChange(JSON.parse(e.data)); scheduleRefresh(); });
  stream.addEventListener("resync", scheduleRefresh);
  stream.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
}

document.getElementById("namespace").addEventListener("change", e => {
  state.namespace = e.target.value; refresh();
});
window.addEventListener("hashchange", showPage);
showPage();
connect();
"""
