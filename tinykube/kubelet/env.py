"""A container's environment, built as upstream's ``makeEnvironmentVariables`` does.

Order of precedence (later wins): Service variables (when ``enableServiceLinks``), then
``envFrom``, then ``env``; ``$(VAR)`` references expand against what was defined before
(``$$`` escapes a ``$``). Everything here is pure: the kubelet fetches the referenced
ConfigMaps, Secrets and Services first and passes them in through :class:`EnvSources`.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from tinykube.api import meta
from tinykube.api.quantity import parse_quantity

Obj = dict[str, Any]
Getter = Callable[[str], Obj | None]

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class EnvError(Exception):
    """The environment cannot be built: the container waits with CreateContainerConfigError."""


@dataclass
class EnvSources:
    configmap: Getter = lambda name: None
    secret: Getter = lambda name: None
    services: list[Obj] = field(default_factory=list)
    master_services: list[Obj] = field(default_factory=list)  # "kubernetes" in default
    pod_ip: str = ""
    host_ip: str = ""
    node_allocatable: dict[str, str] = field(default_factory=dict)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: unknown references stay as written."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2:end]
                    out.append(env[name] if name in env else value[i:end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def service_env(services: list[Obj]) -> dict[str, str]:
    """``<SVC>_SERVICE_HOST``/``_SERVICE_PORT`` and the docker-link variables."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=meta.name):
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP") or ""
        if not ip or ip == "None":
            continue
        ports = spec.get("ports") or []
        name = meta.name(svc).upper().replace("-", "_")
        env[f"{name}_SERVICE_HOST"] = ip
        if not ports:
            continue
        env[f"{name}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p.get("port"))
        first = ports[0]
        env[f"{name}_PORT"] = f"{(first.get('protocol') or 'TCP').lower()}://{ip}:{first.get('port')}"
        for p in ports:
            proto = (p.get("protocol") or "TCP")
            prefix = f"{name}_PORT_{p.get('port')}_{proto.upper()}"
            env[prefix] = f"{proto.lower()}://{ip}:{p.get('port')}"
            env[prefix + "_PROTO"] = proto.lower()
            env[prefix + "_PORT"] = str(p.get("port"))
            env[prefix + "_ADDR"] = ip
    return env


def field_ref(pod: Obj, path: str, src: EnvSources) -> str:
    """``valueFrom.fieldRef`` (the paths the downward API supports for env)."""
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        source = meta.labels(pod) if m.group(1) == "labels" else meta.annotations(pod)
        return source.get(m.group(2), "")
    spec = pod.get("spec") or {}
    values = {
        "metadata.name": meta.name(pod),
        "metadata.namespace": meta.namespace(pod),
        "metadata.uid": meta.uid(pod),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": src.host_ip,
        "status.hostIPs": src.host_ip,
        "status.podIP": src.pod_ip,
        "status.podIPs": src.pod_ip,
    }
    if path == "metadata.labels":
        return format_map(meta.labels(pod))
    if path == "metadata.annotations":
        return format_map(meta.annotations(pod))
    if path not in values:
        raise EnvError(f'unsupported fieldPath: "{path}"')
    return values[path]


def format_map(values: dict[str, str]) -> str:
    """The downward API's ``key="value"`` lines, sorted by key."""
    return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))


def resource_ref(pod: Obj, container: Obj, ref: Obj, src: EnvSources) -> str:
    """``resourceFieldRef``: a request or limit, in units of ``divisor`` rounded up; an unset
    limit is the node's allocatable."""
    name = ref.get("containerName") or container.get("name")
    target = next((c for c in (pod.get("spec") or {}).get("containers", []) + (pod.get("spec") or {}).get("initContainers", [])
                   if c.get("name") == name), container)
    kind, _, resource = (ref.get("resource") or "").partition(".")
    resources = (target.get("resources") or {}).get(kind) or {}
    raw = resources.get(resource)
    if raw is None and kind == "requests" and resource in ("cpu", "memory", "ephemeral-storage"):
        raw = ((target.get("resources") or {}).get("limits") or {}).get(resource)
        if raw is None and resource == "cpu":
            return "0"
    if raw is None:
        raw = src.node_allocatable.get(resource, "0")
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = parse_quantity("1")
    return str(math.ceil(parse_quantity(raw) / divisor))


def _key_ref(kind: str, ref: Obj, getter: Getter, namespace: str) -> str | None:
    name = ref.get("name", "")
    obj = getter(name)
    optional = bool(ref.get("optional"))
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{kind.lower()} "{name}" not found')
    data = obj.get("data") or {}
    key = ref.get("key", "")
    if kind == "Secret":
        if key in data:
            return base64.b64decode(data[key]).decode(errors="replace")
        if key in (obj.get("stringData") or {}):
            return obj["stringData"][key]
    else:
        if key in data:
            return data[key]
        if key in (obj.get("binaryData") or {}):
            return base64.b64decode(obj["binaryData"][key]).decode(errors="replace")
    if optional:
        return None
    raise EnvError(f"couldn't find key {key} in {kind} {namespace}/{name}")


def _env_from(source: Obj, src: EnvSources, namespace: str) -> dict[str, str]:
    prefix = source.get("prefix") or ""
    if "configMapRef" in source:
        ref, kind, getter = source["configMapRef"], "ConfigMap", src.configmap
    elif "secretRef" in source:
        ref, kind, getter = source["secretRef"], "Secret", src.secret
    else:
        return {}
    obj = getter(ref.get("name", ""))
    if obj is None:
        if ref.get("optional"):
            return {}
        raise EnvError(f'{kind.lower()} "{ref.get("name", "")}" not found')
    out: dict[str, str] = {}
    for key, value in (obj.get("data") or {}).items():
        if kind == "Secret":
            value = base64.b64decode(value).decode(errors="replace")
        if ENV_NAME.match(prefix + key):
            out[prefix + key] = value
    return out


def resolve(pod: Obj, container: Obj, src: EnvSources) -> list[tuple[str, str]]:
    """The container's environment as ordered (name, value) pairs."""
    spec = pod.get("spec") or {}
    namespace = meta.namespace(pod)
    env: dict[str, str] = {}
    if spec.get("enableServiceLinks", True):
        env.update(service_env(src.services))
    env.update(service_env(src.master_services))
    for source in container.get("envFrom") or []:
        env.update(_env_from(source, src, namespace))
    for var in container.get("env") or []:
        name = var.get("name", "")
        if "valueFrom" in var:
            vf = var["valueFrom"]
            if "fieldRef" in vf:
                value: str | None = field_ref(pod, vf["fieldRef"].get("fieldPath", ""), src)
            elif "resourceFieldRef" in vf:
                value = resource_ref(pod, container, vf["resourceFieldRef"], src)
            elif "configMapKeyRef" in vf:
                value = _key_ref("ConfigMap", vf["configMapKeyRef"], src.configmap, namespace)
            elif "secretKeyRef" in vf:
                value = _key_ref("Secret", vf["secretKeyRef"], src.secret, namespace)
            else:
                value = ""
            if value is None:
                continue
        else:
            value = expand(var.get("value", ""), env)
        env[name] = value
    return list(env.items())


def expand_command(words: list[str], env: list[tuple[str, str]]) -> list[str]:
    """``$(VAR)`` in command and args expands against the container's environment."""
    mapping = dict(env)
    return [expand(w, mapping) for w in words]


def referenced_names(pod: Obj) -> tuple[set[str], set[str]]:
    """(ConfigMap names, Secret names) the pod's env, envFrom and volumes refer to."""
    cms: set[str] = set()
    secrets: set[str] = set()
    spec = pod.get("spec") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for source in c.get("envFrom") or []:
            if "configMapRef" in source:
                cms.add(source["configMapRef"].get("name", ""))
            if "secretRef" in source:
                secrets.add(source["secretRef"].get("name", ""))
        for var in c.get("env") or []:
            vf = var.get("valueFrom") or {}
            if "configMapKeyRef" in vf:
                cms.add(vf["configMapKeyRef"].get("name", ""))
            if "secretKeyRef" in vf:
                secrets.add(vf["secretKeyRef"].get("name", ""))
    for vol in spec.get("volumes") or []:
        if "configMap" in vol:
            cms.add(vol["configMap"].get("name", ""))
        if "secret" in vol:
            secrets.add(vol["secret"].get("secretName", ""))
        for proj in (vol.get("projected") or {}).get("sources") or []:
            if "configMap" in proj:
                cms.add(proj["configMap"].get("name", ""))
            if "secret" in proj:
                secrets.add(proj["secret"].get("name", ""))
    return cms, secrets
