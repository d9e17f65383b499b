"""View models: API objects -> the rows the dashboard's pages show.

Pure functions of the objects and the current time, so the pages' content is testable
without a server. Cells are computed by ``tinykube.api.printers`` (the ``kubectl get``
printers), so READY, STATUS, RESTARTS and AGE read exactly as kubectl prints them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from tinykube.api import meta, pods, printers

Obj = dict[str, Any]
Row = dict[str, Any]

CONTROL_PLANE_NAMESPACE = "kube-system"
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_RESOURCES = ("cpu", "memory", "pods", "ephemeral-storage")


def _owner(obj: Obj) -> str:
    """``Kind/name`` of the controlling owner, or ``""``: how a learner follows the chain."""
    ref = meta.controller_of(obj)
    return f"{ref.get('kind', '')}/{ref.get('name', '')}" if ref else ""


def _sorted(rows: Iterable[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (r["namespace"], r["name"]))


def _resources(values: Mapping[str, Any] | None) -> dict[str, str]:
    values = values or {}
    return {name: str(values[name]) for name in NODE_RESOURCES if name in values}


def pods_per_node(pod_objs: Iterable[Obj]) -> Counter[str]:
    """Non-terminal pods bound to each node (what occupies the node's ``pods`` capacity)."""
    return Counter(pods.node_name(p) for p in pod_objs
                   if pods.node_name(p) and not pods.is_terminal(p))


def lease_row(lease: Obj, now: float) -> Row:
    """Who holds a Lease and how long ago it was renewed: leader election, node heartbeats."""
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime")
    return {"namespace": meta.namespace(lease), "name": meta.name(lease),
            "holder": spec.get("holderIdentity") or "<unset>",
            "renewed": printers.since(renewed, now) if renewed else "<never>"}


def leader_rows(leases: Iterable[Obj], now: float) -> list[Row]:
    """The control plane's leader-election Leases (kube-scheduler, kube-controller-manager)."""
    return _sorted(lease_row(lease, now) for lease in leases
                   if meta.namespace(lease) == CONTROL_PLANE_NAMESPACE)


def node_row(node: Obj, pod_count: int, now: float, lease: Obj | None = None) -> Row:
    """``lease`` is the node's heartbeat Lease in kube-node-lease, when there is one."""
    cells = printers.node_cells(node, now)
    status = node.get("status") or {}
    return {
        "name": cells[0], "status": cells[1], "ready": cells[1].split(",")[0] == "Ready",
        "roles": cells[2], "age": cells[3], "version": cells[4], "internalIP": cells[5],
        "capacity": _resources(status.get("capacity")),
        "allocatable": _resources(status.get("allocatable")),
        "pods": pod_count,
        "heartbeat": lease_row(lease, now)["renewed"] if lease else "<none>",
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "taints": [f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                   for t in (node.get("spec") or {}).get("taints") or []],
    }


def node_leases(leases: Iterable[Obj]) -> dict[str, Obj]:
    """Node name -> its heartbeat Lease."""
    return {meta.name(lease): lease for lease in leases
            if meta.namespace(lease) == NODE_LEASE_NAMESPACE}


def node_rows(nodes: Iterable[Obj], pod_objs: Iterable[Obj], now: float,
              leases: Iterable[Obj] = ()) -> list[Row]:
    counts = pods_per_node(pod_objs)
    heartbeats = node_leases(leases)
    return sorted((node_row(n, counts[meta.name(n)], now, heartbeats.get(meta.name(n)))
                   for n in nodes), key=lambda r: r["name"])


def pod_row(pod: Obj, now: float) -> Row:
    cells = printers.pod_cells(pod, now)
    return {
        "namespace": meta.namespace(pod), "name": cells[0], "ready": cells[1],
        "status": cells[2], "restarts": cells[3], "age": cells[4], "ip": cells[5],
        "node": cells[6], "owner": _owner(pod), "phase": pods.phase(pod),
        "component": meta.labels(pod).get("component", ""),
    }


def pod_rows(pod_objs: Iterable[Obj], now: float) -> list[Row]:
    return sorted((pod_row(p, now) for p in pod_objs),
                  key=lambda r: (r["namespace"], r["name"]))


def control_plane_rows(pod_objs: Iterable[Obj], now: float) -> list[Row]:
    """The pods of kube-system (static control-plane pods, DNS, proxies)."""
    return pod_rows((p for p in pod_objs if meta.namespace(p) == CONTROL_PLANE_NAMESPACE), now)


def deployment_row(obj: Obj, now: float) -> Row:
    cells = printers.deployment_cells(obj, now)
    return {
        "namespace": meta.namespace(obj), "name": cells[0], "ready": cells[1],
        "upToDate": cells[2], "available": cells[3], "age": cells[4], "containers": cells[5],
        "images": cells[6], "selector": cells[7],
        "replicas": int((obj.get("spec") or {}).get("replicas") or 0),
    }


def replicaset_row(obj: Obj, now: float) -> Row:
    cells = printers.replicas_cells(obj, now)
    return {
        "namespace": meta.namespace(obj), "name": cells[0], "desired": cells[1],
        "current": cells[2], "ready": cells[3], "age": cells[4], "owner": _owner(obj),
    }


def workload_rows(deployments: Iterable[Obj], replicasets: Iterable[Obj],
                  pod_objs: Iterable[Obj], now: float) -> dict[str, list[Row]]:
    return {
        "deployments": _sorted(deployment_row(d, now) for d in deployments),
        "replicasets": _sorted(replicaset_row(r, now) for r in replicasets),
        "pods": pod_rows(pod_objs, now),
    }


def endpoint_addresses(endpoints: Obj | None) -> tuple[list[str], list[str]]:
    """(ready, not ready) ``ip:port`` of an Endpoints object: who a Service routes to."""
    ready: list[str] = []
    not_ready: list[str] = []
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for out, field in ((ready, "addresses"), (not_ready, "notReadyAddresses")):
            for addr in subset.get(field) or []:
                target = (addr.get("targetRef") or {}).get("name", "")
                for port in ports:
                    text = addr.get("ip", "") if port is None else f"{addr.get('ip', '')}:{port}"
                    out.append(f"{text} ({target})" if target else text)
    return ready, not_ready


def service_row(svc: Obj, endpoints: Obj | None, now: float) -> Row:
    cells = printers.service_cells(svc, now)
    ready, not_ready = endpoint_addresses(endpoints)
    return {
        "namespace": meta.namespace(svc), "name": cells[0], "type": cells[1],
        "clusterIP": cells[2], "externalIP": cells[3], "ports": cells[4], "age": cells[5],
        "selector": cells[6], "endpoints": ready, "notReadyEndpoints": not_ready,
    }


def service_rows(services: Iterable[Obj], endpoints_by_key: Mapping[str, Obj],
                 now: float) -> list[Row]:
    """Services joined with the Endpoints of the same namespace/name."""
    return _sorted(service_row(s, endpoints_by_key.get(meta.key(s)), now) for s in services)


def event_time(ev: Obj) -> str:
    """When the event last happened, as RFC 3339 (series, lastTimestamp, eventTime, created)."""
    series = ev.get("series") or {}
    return (series.get("lastObservedTime") or ev.get("lastTimestamp") or ev.get("eventTime")
            or ev.get("firstTimestamp") or meta.creation_timestamp(ev) or "")


def _event_sort_key(ev: Obj) -> tuple[float, int]:
    try:
        when = meta.parse_time(event_time(ev)).timestamp()
    except ValueError:
        when = 0.0
    rv = meta.resource_version(ev)
    return when, int(rv) if rv.isdigit() else 0


def event_row(ev: Obj, now: float) -> Row:
    cells = printers.event_cells(ev, now)
    involved = ev.get("involvedObject") or ev.get("regarding") or {}
    return {
        "namespace": meta.namespace(ev), "name": meta.name(ev), "lastSeen": cells[0],
        "type": cells[1], "reason": cells[2], "object": cells[3],
        "objectKind": involved.get("kind", ""), "objectName": involved.get("name", ""),
        "source": cells[5], "message": cells[6], "count": cells[8],
        "time": event_time(ev), "warning": cells[1] == "Warning",
    }


def event_rows(events: Iterable[Obj], now: float, *, involved: str | None = None,
               limit: int | None = None) -> list[Row]:
    """Newest first; ``involved`` (``kind/name``, kind any case) keeps one object's events."""
    ordered = sorted(events, key=_event_sort_key, reverse=True)
    rows = (event_row(e, now) for e in ordered)
    if involved:
        kind, _, name = involved.partition("/")
        rows = (r for r in rows
                if r["objectKind"].lower() == kind.lower() and r["objectName"] == name)
    out = list(rows)
    return out[:limit] if limit is not None else out


def namespace_rows(namespaces: Iterable[Obj], pod_objs: Iterable[Obj],
                   now: float) -> list[Row]:
    counts = Counter(meta.namespace(p) for p in pod_objs)
    rows = []
    for ns in namespaces:
        cells = printers.namespace_cells(ns, now)
        rows.append({"name": cells[0], "status": cells[1], "age": cells[2],
                     "pods": counts[meta.name(ns)]})
    return sorted(rows, key=lambda r: r["name"])


def overview(nodes: Iterable[Obj], pod_objs: list[Obj], now: float,
             leases: Iterable[Obj] = ()) -> Row:
    """The cluster at a glance: nodes, pod phases, the control plane's pods and leaders."""
    leases = list(leases)
    node_list = node_rows(nodes, pod_objs, now, leases)
    phases = Counter(pods.phase(p) for p in pod_objs)
    return {
        "nodes": node_list,
        "nodesReady": sum(1 for n in node_list if n["ready"]),
        "podPhases": dict(sorted(phases.items())),
        "controlPlane": control_plane_rows(pod_objs, now),
        "leaders": leader_rows(leases, now),
    }


def in_namespace(objs: Iterable[Obj], namespace: str | None) -> list[Obj]:
    """Objects of one namespace, or all when ``namespace`` is empty."""
    return [o for o in objs if not namespace or meta.namespace(o) == namespace]
