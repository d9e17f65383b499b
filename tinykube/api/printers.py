"""Cell values of ``kubectl get`` rows, one function per kind, as upstream's printers
(pkg/printers/internalversion/printers.go) compute them: a pod's STATUS and RESTARTS, a
node's roles, endpoints lists with ``+ N more...``, ages as kubectl's HumanDuration.

Every printer takes the object and the current time and returns the full (wide) row.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

from tinykube.api import meta
from tinykube.api.selectors import LabelSelector
from tinykube.api.quantity import parse_quantity

Obj = dict[str, Any]
Cell = Any


# --- durations and small formatters ----------------------------------------------------


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: 5s, 3m2s, 4h, 2d3h, 10d, 3y."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        rest = secs % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: str | None, now: float | None = None) -> str:
    """``translateTimestampSince``: the age of an RFC 3339 time, ``<unknown>`` when unset."""
    if not timestamp:
        return "<unknown>"
    try:
        then = meta.parse_time(timestamp).timestamp()
    except ValueError:
        return "<unknown>"
    return human_duration((time.time() if now is None else now) - then)


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: the selector string, ``<none>`` when it is empty."""
    try:
        text = str(LabelSelector.from_dict(selector)) if selector is not None else ""
    except ValueError:
        return "<error>"
    return text or "<none>"


def containers_cells(pod_spec: Mapping[str, Any] | None) -> tuple[str, str]:
    containers = (pod_spec or {}).get("containers") or []
    return (",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers))


def _template_spec(obj: Obj) -> Mapping[str, Any]:
    return (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}


def _bool_ptr(value: Any) -> str:
    if value is None:
        return "<unset>"
    return "True" if value else "False"


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        text = f"{text} + {count - limit} more..."
    return text or "<unset>"


def pod_cells(pod: Obj, now: float) -> list[Cell]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    restarts = 0
    sidecar_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart = ""
    last_sidecar_restart = ""
    reason = status.get("phase") or ""
    if status.get("reason"):
        reason = status["reason"]
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total += sum(1 for c in init_specs.values() if c.get("restartPolicy") == "Always")

    def later(a: str, b: str) -> str:
        if not b:
            return a
        if not a:
            return b
        try:
            return b if meta.parse_time(b) > meta.parse_time(a) else a
        except ValueError:
            return a

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        last_term = (cs.get("lastState") or {}).get("terminated") or {}
        last_restart = later(last_restart, last_term.get("finishedAt") or "")
        sidecar = (init_specs.get(cs.get("name")) or {}).get("restartPolicy") == "Always"
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = later(last_sidecar_restart, last_term.get("finishedAt") or "")
        state = cs.get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{terminated['signal']}"
                else:
                    reason = f"Init:ExitCode:{int(terminated.get('exitCode') or 0)}"
            else:
                reason = "Init:" + terminated["reason"]
        elif waiting is not None and waiting.get("reason") and \
                waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{n_init}"
        initializing = True
        break

    initialized = any(c.get("type") == "Initialized" and c.get("status") == "True"
                      for c in status.get("conditions") or [])
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_term = (cs.get("lastState") or {}).get("terminated") or {}
            last_restart = later(last_restart, last_term.get("finishedAt") or "")
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{int(terminated.get('exitCode') or 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in status.get("conditions") or [])
            reason = "Running" if pod_ready else "NotReady"

    deleting = meta.deletion_timestamp(pod) is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and (status.get("phase") not in ("Succeeded", "Failed")):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({since(last_restart, now)} ago)"

    pod_ips = status.get("podIPs") or []
    pod_ip = (pod_ips[0].get("ip") if pod_ips else "") or status.get("podIP") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        true_count = sum(1 for g in gates if conds.get(g.get("conditionType")) == "True")
        gates_text = f"{true_count}/{len(gates)}"
    return [meta.name(pod), f"{ready}/{total}", reason, restarts_text,
            since(meta.creation_timestamp(pod), now),
            pod_ip, spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gates_text]


def deployment_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(_template_spec(obj))
    return [meta.name(obj),
            f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
            int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0),
            since(meta.creation_timestamp(obj), now), names, images,
            format_label_selector(spec.get("selector"))]


def replicas_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(_template_spec(obj))
    selector = spec.get("selector")
    selector_text = (format_labels(selector) if obj.get("kind") == "ReplicationController"
                     else format_label_selector(selector))
    return [meta.name(obj), int(spec.get("replicas") or 0), int(status.get("replicas") or 0),
            int(status.get("readyReplicas") or 0), since(meta.creation_timestamp(obj), now),
            names, images, selector_text]


def daemonset_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(_template_spec(obj))
    return [meta.name(obj), int(status.get("desiredNumberScheduled") or 0),
            int(status.get("currentNumberScheduled") or 0), int(status.get("numberReady") or 0),
            int(status.get("updatedNumberScheduled") or 0),
            int(status.get("numberAvailable") or 0),
            format_labels(_template_spec(obj).get("nodeSelector")),
            since(meta.creation_timestamp(obj), now), names, images,
            format_label_selector(spec.get("selector"))]


def statefulset_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = containers_cells(_template_spec(obj))
    return [meta.name(obj),
            f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}",
            since(meta.creation_timestamp(obj), now), names, images]


def _condition_true(obj: Obj, cond_type: str) -> bool:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond.get("status") == "True"
    return False


def job_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{int(spec['completions'])}"
    elif int(spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {int(spec['parallelism'])}"
    else:
        completions = f"{succeeded}/1"
    start, done = status.get("startTime"), status.get("completionTime")
    duration = ""
    try:
        if start and not done:
            duration = human_duration(now - meta.parse_time(start).timestamp())
        elif start and done:
            duration = human_duration(meta.parse_time(done).timestamp()
                                      - meta.parse_time(start).timestamp())
    except ValueError:
        duration = ""
    if _condition_true(obj, "Complete"):
        state = "Complete"
    elif _condition_true(obj, "Failed"):
        state = "Failed"
    elif meta.deletion_timestamp(obj):
        state = "Terminating"
    elif _condition_true(obj, "Suspended"):
        state = "Suspended"
    elif _condition_true(obj, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = containers_cells(_template_spec(obj))
    return [meta.name(obj), state, completions, duration,
            since(meta.creation_timestamp(obj), now), names, images,
            format_label_selector(spec.get("selector"))]


def cronjob_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = containers_cells(((job_spec.get("template") or {}).get("spec")) or {})
    last = status.get("lastScheduleTime")
    return [meta.name(obj), spec.get("schedule") or "", spec.get("timeZone") or "<none>",
            _bool_ptr(spec.get("suspend")), len(status.get("active") or []),
            since(last, now) if last else "<none>", since(meta.creation_timestamp(obj), now),
            names, images, format_label_selector(job_spec.get("selector"))]


def _lb_ingress(lb: Mapping[str, Any] | None, wide: bool = True) -> str:
    found = sorted({i.get("ip") or i.get("hostname") for i in (lb or {}).get("ingress") or []
                    if i.get("ip") or i.get("hostname")})
    text = ",".join(found)
    if not wide and len(text) > 16:
        text = text[:13] + "..."
    return text


def _external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    external = spec.get("externalIPs") or []
    svc_type = spec.get("type") or "ClusterIP"
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        lb = _lb_ingress((svc.get("status") or {}).get("loadBalancer"))
        if external:
            return ",".join([*(lb.split(",") if lb else []), *external])
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def _service_ports(ports: Iterable[Mapping[str, Any]]) -> str:
    pieces = []
    for port in ports:
        proto = port.get("protocol") or "TCP"
        if port.get("nodePort"):
            pieces.append(f"{port.get('port')}:{port['nodePort']}/{proto}")
        else:
            pieces.append(f"{port.get('port')}/{proto}")
    return ",".join(pieces)


def service_cells(svc: Obj, now: float) -> list[Cell]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or []
    internal = cluster_ips[0] if cluster_ips else (spec.get("clusterIP") or "<none>")
    ports = _service_ports(spec.get("ports") or []) or "<none>"
    return [meta.name(svc), spec.get("type") or "ClusterIP", internal, _external_ip(svc), ports,
            since(meta.creation_timestamp(svc), now), format_labels(spec.get("selector"))]


def _endpoints_text(obj: Obj) -> str:
    subsets = obj.get("subsets") or []
    if not subsets:
        return "<none>"
    items: list[str] = []
    limit, more, count = 3, False, 0
    for subset in subsets:
        addresses = subset.get("addresses") or []
        ports = subset.get("ports") or []
        if not ports:
            count += len(addresses)
            for addr in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(addr.get("ip", ""))
            continue
        for port in ports:
            count += len(addresses)
            for addr in addresses:
                if len(items) == limit:
                    more = True
                    break
                ip = addr.get("ip", "")
                host = f"[{ip}]" if ":" in ip else ip
                items.append(f"{host}:{port.get('port')}")
    text = ",".join(items)
    return f"{text} + {count - limit} more..." if more else text


def endpoints_cells(obj: Obj, now: float) -> list[Cell]:
    return [meta.name(obj), _endpoints_text(obj), since(meta.creation_timestamp(obj), now)]


def endpointslice_cells(obj: Obj, now: float) -> list[Cell]:
    limit = 3
    ports, more, count = [], False, 0
    for port in obj.get("ports") or []:
        if len(ports) < limit:
            if port.get("port") is not None:
                ports.append(str(port["port"]))
            elif port.get("name") is not None:
                ports.append(port["name"])
            else:
                ports.append("*")
        else:
            more = True
        count += 1
    addrs, amore, acount = [], False, 0
    for endpoint in obj.get("endpoints") or []:
        for address in endpoint.get("addresses") or []:
            if len(addrs) < limit:
                addrs.append(address)
            else:
                amore = True
            acount += 1
    return [meta.name(obj), obj.get("addressType") or "", _list_with_more(ports, more, count, limit),
            _list_with_more(addrs, amore, acount, limit), since(meta.creation_timestamp(obj), now)]


def node_roles(node: Obj) -> list[str]:
    roles = set()
    for key, value in meta.labels(node).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def node_status_text(node: Obj) -> str:
    status: list[str] = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            status = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if (node.get("spec") or {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_address(node: Obj, kind: str) -> str:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == kind:
            return addr.get("address") or "<none>"
    return "<none>"


def node_cells(node: Obj, now: float) -> list[Cell]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [meta.name(node), node_status_text(node), ",".join(node_roles(node)) or "<none>",
            since(meta.creation_timestamp(node), now), info.get("kubeletVersion") or "",
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _as_core_event(ev: Obj) -> Obj:
    """events.k8s.io/v1 Events are printed from the core shape, as upstream's internal type."""
    if ev.get("apiVersion") != "events.k8s.io/v1":
        return ev
    return {
        "metadata": ev.get("metadata") or {},
        "involvedObject": ev.get("regarding") or {},
        "reason": ev.get("reason"), "message": ev.get("note"), "type": ev.get("type"),
        "firstTimestamp": ev.get("deprecatedFirstTimestamp"),
        "lastTimestamp": ev.get("deprecatedLastTimestamp"),
        "count": ev.get("deprecatedCount"), "eventTime": ev.get("eventTime"),
        "series": ev.get("series"),
        "source": ev.get("deprecatedSource") or {},
        "reportingComponent": ev.get("reportingController"),
        "reportingInstance": ev.get("reportingInstance"),
    }


def _event_source(ev: Obj) -> str:
    source = ev.get("source") or {}
    component = source.get("component") or ev.get("reportingComponent") or ""
    host = source.get("host") or ev.get("reportingInstance") or ""
    if component and host:
        return f"{component}, {host}"
    return component or host


def event_cells(raw: Obj, now: float) -> list[Cell]:
    ev = _as_core_event(raw)
    first = ev.get("firstTimestamp") or ev.get("eventTime")
    first_text = since(first, now)
    last = ev.get("lastTimestamp")
    last_text = since(last, now) if last else first_text
    count = int(ev.get("count") or 0)
    series = ev.get("series")
    if series:
        last_text = since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1
    involved = ev.get("involvedObject") or {}
    target = f"{(involved.get('kind') or '').lower()}/{involved.get('name') or ''}"
    return [last_text, ev.get("type") or "", ev.get("reason") or "", target,
            involved.get("fieldPath") or "", _event_source(ev), ev.get("message") or "",
            first_text, count, meta.name(ev)]


def namespace_cells(obj: Obj, now: float) -> list[Cell]:
    return [meta.name(obj), (obj.get("status") or {}).get("phase") or "",
            since(meta.creation_timestamp(obj), now)]


def secret_cells(obj: Obj, now: float) -> list[Cell]:
    count = len(obj.get("data") or {}) + len(obj.get("stringData") or {})
    return [meta.name(obj), obj.get("type") or "", count, since(meta.creation_timestamp(obj), now)]


def configmap_cells(obj: Obj, now: float) -> list[Cell]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [meta.name(obj), count, since(meta.creation_timestamp(obj), now)]


def serviceaccount_cells(obj: Obj, now: float) -> list[Cell]:
    return [meta.name(obj), len(obj.get("secrets") or []), since(meta.creation_timestamp(obj), now)]


_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                 "ReadWriteOncePod": "RWOP"}


def _access_modes(modes: Iterable[str] | None) -> str:
    wanted = set(modes or [])
    return ",".join(short for mode, short in _ACCESS_MODES.items() if mode in wanted)


def _storage_class_of(obj: Obj) -> str:
    spec = obj.get("spec") or {}
    return (meta.annotations(obj).get("volume.beta.kubernetes.io/storage-class")
            or spec.get("storageClassName") or "")


def pv_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    claim_ref = spec.get("claimRef") or {}
    claim = f"{claim_ref.get('namespace', '')}/{claim_ref.get('name', '')}" if claim_ref else ""
    phase = "Terminating" if meta.deletion_timestamp(obj) else (status.get("phase") or "")
    return [meta.name(obj), (spec.get("capacity") or {}).get("storage", ""),
            _access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy") or "", phase, claim,
            _storage_class_of(obj), spec.get("volumeAttributesClassName") or "<unset>",
            status.get("reason") or "", since(meta.creation_timestamp(obj), now),
            spec.get("volumeMode") or "<unset>"]


def pvc_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    phase = "Terminating" if meta.deletion_timestamp(obj) else (status.get("phase") or "")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = _access_modes(status.get("accessModes"))
        capacity = (status.get("capacity") or {}).get("storage", "")
    return [meta.name(obj), phase, spec.get("volumeName") or "", capacity, modes,
            _storage_class_of(obj),
            status.get("currentVolumeAttributesClassName") or
            spec.get("volumeAttributesClassName") or "<unset>",
            since(meta.creation_timestamp(obj), now), spec.get("volumeMode") or "<unset>"]


def componentstatus_cells(obj: Obj, now: float) -> list[Cell]:
    state, message, error = "Unknown", "", ""
    for cond in obj.get("conditions") or []:
        if cond.get("type") == "Healthy":
            state = "Healthy" if cond.get("status") == "True" else "Unhealthy"
            message, error = cond.get("message") or "", cond.get("error") or ""
            break
    return [meta.name(obj), state, message, error]


def metrics_cells(obj: Obj, now: float) -> list[Cell]:
    """metrics-server's columns: a NodeMetrics' usage, or a PodMetrics' summed over its
    containers (in the units of its containers' figures)."""
    usage = obj.get("usage")
    if not isinstance(usage, Mapping):
        cpu = sum(_quantity(c, "cpu") for c in _dicts(obj.get("containers")))
        memory = sum(_quantity(c, "memory") for c in _dicts(obj.get("containers")))
        usage = {"cpu": f"{int(cpu * 1_000_000_000)}n", "memory": f"{int(memory) // 1024}Ki"}
    return [meta.name(obj), str(usage.get("cpu", "")), str(usage.get("memory", "")), str(obj.get("window", ""))]


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _quantity(container: Mapping[str, Any], resource: str) -> Any:
    usage = container.get("usage")
    try:
        return parse_quantity(str(usage.get(resource, "0"))) if isinstance(usage, Mapping) else 0
    except ValueError:
        return 0


def _hpa_target(metric: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    kind = metric.get("type")
    if kind == "Resource" or kind == "ContainerResource":
        res = metric.get("resource") or metric.get("containerResource") or {}
        target = res.get("target") or {}
        cur = ((current or {}).get("resource") or (current or {}).get("containerResource")
               or {}).get("current") or {}
        if target.get("type") == "Utilization" or target.get("averageUtilization") is not None:
            now_text = (f"{cur['averageUtilization']}%" if cur.get("averageUtilization")
                        is not None else "<unknown>")
            return f"{res.get('name')}: {now_text}/{target.get('averageUtilization')}%"
        now_text = cur.get("averageValue") or "<unknown>"
        return f"{res.get('name')}: {now_text}/{target.get('averageValue')}"
    body = metric.get(str(kind)[:1].lower() + str(kind)[1:]) or {}
    target = body.get("target") or {}
    value = target.get("averageValue") or target.get("value") or "<unset>"
    return f"<unknown>/{value}"


def hpa_cells(obj: Obj, now: float) -> list[Cell]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics = spec.get("metrics") or []
    currents = status.get("currentMetrics") or []
    parts = [_hpa_target(m, currents[i] if i < len(currents) else None)
             for i, m in enumerate(metrics[:3])]
    targets = ", ".join(parts) if parts else "<none>"
    if len(metrics) > 3:
        targets += f" + {len(metrics) - 3} more..."
    min_pods = spec.get("minReplicas")
    return [meta.name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", targets,
            "<unset>" if min_pods is None else str(min_pods), str(spec.get("maxReplicas", "")),
            str(int(status.get("currentReplicas") or 0)), since(meta.creation_timestamp(obj), now)]


def lease_cells(obj: Obj, now: float) -> list[Cell]:
    holder = (obj.get("spec") or {}).get("holderIdentity") or "<unset>"
    return [meta.name(obj), holder, since(meta.creation_timestamp(obj), now)]


def binding_cells(obj: Obj, now: float) -> list[Cell]:
    ref = obj.get("roleRef") or {}
    users, groups, sas = [], [], []
    for subject in obj.get("subjects") or []:
        kind = subject.get("kind")
        if kind == "User":
            users.append(subject.get("name", ""))
        elif kind == "Group":
            groups.append(subject.get("name", ""))
        elif kind == "ServiceAccount":
            sas.append(f"{subject.get('namespace', '')}/{subject.get('name', '')}")
    return [meta.name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            since(meta.creation_timestamp(obj), now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def storageclass_cells(obj: Obj, now: float) -> list[Cell]:
    name = meta.name(obj)
    annotations = meta.annotations(obj)
    if annotations.get("storageclass.kubernetes.io/is-default-class") == "true" or \
            annotations.get("storageclass.beta.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    return [name, obj.get("provisioner") or "", obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate",
            bool(obj.get("allowVolumeExpansion")), since(meta.creation_timestamp(obj), now)]


def resourcequota_cells(obj: Obj, now: float) -> list[Cell]:
    status = obj.get("status") or {}
    hard, used = status.get("hard") or {}, status.get("used") or {}
    requests, limits = [], []
    for resource in sorted(hard):
        text = f"{resource}: {used.get(resource, '0')}/{hard[resource]}"
        (limits if resource.split(".")[0] == "limits" and "." in resource
         else requests).append(text)
    return [meta.name(obj), since(meta.creation_timestamp(obj), now), ", ".join(requests),
            ", ".join(limits)]


def priorityclass_cells(obj: Obj, now: float) -> list[Cell]:
    return [meta.name(obj), int(obj.get("value") or 0), bool(obj.get("globalDefault")),
            since(meta.creation_timestamp(obj), now), obj.get("preemptionPolicy") or "<unset>"]


def pdb_cells(obj: Obj, now: float) -> list[Cell]:
    spec = obj.get("spec") or {}
    min_avail = spec.get("minAvailable")
    max_unavail = spec.get("maxUnavailable")
    return [meta.name(obj), "N/A" if min_avail is None else str(min_avail),
            "N/A" if max_unavail is None else str(max_unavail),
            int((obj.get("status") or {}).get("disruptionsAllowed") or 0),
            since(meta.creation_timestamp(obj), now)]


def networkpolicy_cells(obj: Obj, now: float) -> list[Cell]:
    return [meta.name(obj), format_label_selector((obj.get("spec") or {}).get("podSelector")),
            since(meta.creation_timestamp(obj), now)]


def ingress_cells(obj: Obj, now: float) -> list[Cell]:
    spec = obj.get("spec") or {}
    rules = spec.get("rules") or []
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    host_text = ",".join(hosts) or "*"
    if more:
        host_text = f"{host_text} + {len(rules) - 3} more..."
    return [meta.name(obj), spec.get("ingressClassName") or "<none>", host_text,
            _lb_ingress((obj.get("status") or {}).get("loadBalancer")),
            "80, 443" if spec.get("tls") else "80", since(meta.creation_timestamp(obj), now)]


def ingressclass_cells(obj: Obj, now: float) -> list[Cell]:
    spec = obj.get("spec") or {}
    params = spec.get("parameters")
    text = "<none>"
    if params:
        text = params.get("kind", "")
        if params.get("apiGroup"):
            text += "." + params["apiGroup"]
        text += "/" + params.get("name", "")
    return [meta.name(obj), spec.get("controller") or "", text,
            since(meta.creation_timestamp(obj), now)]


def controllerrevision_cells(obj: Obj, now: float) -> list[Cell]:
    ref = meta.controller_of(obj)
    controller = "<none>"
    if ref:
        group = ref.get("apiVersion", "").rpartition("/")[0]
        kind = ref.get("kind", "") + (f".{group}" if group else "")
        controller = f"{kind.lower()}/{ref.get('name', '')}"
    return [meta.name(obj), controller, int(obj.get("revision") or 0),
            since(meta.creation_timestamp(obj), now)]


def podtemplate_cells(obj: Obj, now: float) -> list[Cell]:
    template = obj.get("template") or {}
    names, images = containers_cells(template.get("spec"))
    return [meta.name(obj), names, images,
            format_labels((template.get("metadata") or {}).get("labels"))]


def default_cells(obj: Obj, now: float) -> list[Cell]:
    return [meta.name(obj), meta.creation_timestamp(obj) or ""]




def pod_row_conditions(pod: Obj) -> list[dict[str, str]]:
    """Upstream marks finished pods' rows Completed (podSuccessConditions and friends)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed",
                 "message": "The pod failed."}]
    return []
