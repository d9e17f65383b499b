"""Upstream's OpenAPI schemas (shipped by kubernetes-validate) and the served documents.

The package carries the v1.32 definitions as JSON Schema (``$defs`` keyed like
``io.k8s.api.core.v1.PodSpec``) with the ``x-kubernetes-*`` extensions that drive
strategic merge patch and server-side apply. They are loaded once, lazily. From them this
module also builds what the API server serves at ``/openapi/v2`` and ``/openapi/v3``, in
the shapes kubectl expects (``kubectl explain`` walks ``components.schemas`` by
``x-kubernetes-group-version-kind`` and follows ``allOf``/``$ref``).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
import hashlib
import json
import os
from typing import Any, Iterable, Mapping, Sequence

from tinykube.api import kinds
from tinykube.api.kinds import ResourceInfo

SCHEMA_VERSION = "v1.32.0"
_REF_PREFIX = "#/$defs/"

Schema = dict[str, Any]


def _definitions_path() -> str:
    # Only the package's data file is needed: finding it without importing the package
    # (which imports jsonschema, over 0.1 s of CPU) keeps the API server's first write fast.
    import importlib.util

    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.origin:
        raise ModuleNotFoundError("kubernetes_validate (the upstream schemas) is not installed",
                                  name="kubernetes_validate")
    base = os.path.dirname(spec.origin)
    return os.path.join(base, "kubernetes-json-schema", f"{SCHEMA_VERSION}-local",
                        "_definitions.json")


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, Schema]:
    """All upstream definitions by name (read-only; callers must not mutate)."""
    with open(_definitions_path(), "rb") as fh:
        return json.load(fh)["$defs"]


@functools.lru_cache(maxsize=1)
def _gvk_index() -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for def_name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            index.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")),
                             def_name)
    return index


def definition_name(group: str, version: str, kind: str) -> str | None:
    return _gvk_index().get((group, version, kind))


def definition_name_for(info: ResourceInfo) -> str | None:
    return definition_name(info.group, info.version, info.kind)


def definition_for(info: ResourceInfo) -> Schema | None:
    """The top-level schema of a kind (e.g. io.k8s.api.apps.v1.Deployment)."""
    def_name = definition_name_for(info)
    return definitions().get(def_name) if def_name else None


def ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        return ref[len(_REF_PREFIX):]
    for sub in schema.get("allOf") or []:
        name = ref_name(sub)
        if name:
            return name
    return None


def resolve(schema: Mapping[str, Any] | None) -> Schema:
    """Follow ``$ref`` to the referenced definition; the schema itself otherwise.

    The result is shared with the loaded definitions: read it, never modify it.
    """
    if not schema:
        return {}
    seen = 0
    current: Mapping[str, Any] = schema
    while seen < 32:
        name = ref_name(current)
        if not name:
            return current  # type: ignore[return-value]
        current = definitions().get(name) or {}
        seen += 1
    return current  # type: ignore[return-value]


@dataclass(frozen=True)
class Node:
    """What walkers need of one schema node, computed once per node (see ``node``)."""

    types: frozenset[str]
    properties: Mapping[str, Any] | None
    items: Mapping[str, Any] | None
    additional: Mapping[str, Any] | None
    preserve_unknown: bool
    ref: str | None
    # The Python types ``types`` certainly allows (exact types; others need a closer look).
    accepts: frozenset[type] = frozenset()


_PY_TYPES = {"boolean": (bool,), "integer": (int,), "number": (int, float), "string": (str,),
             "array": (list,), "object": (dict,)}

_NODES: dict[int, tuple[Mapping[str, Any], Node]] = {}


def node(raw: Mapping[str, Any]) -> Node:
    """The compiled form of a raw (possibly ``$ref``) schema node, cached by identity."""
    cached = _NODES.get(id(raw))
    if cached is not None and cached[0] is raw:
        return cached[1]
    resolved = resolve(raw)
    items = resolved.get("items")
    kinds = frozenset(types(resolved))
    compiled = Node(kinds, resolved.get("properties") or None,
                    items if isinstance(items, dict) else None, additional_schema(resolved),
                    is_preserve_unknown(resolved), ref_name(raw),
                    frozenset(t for kind in kinds for t in _PY_TYPES.get(kind, ())))
    _NODES[id(raw)] = (raw, compiled)
    return compiled


def types(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema allows, without ``null``."""
    t = schema.get("type")
    if isinstance(t, str):
        out = {t}
    elif isinstance(t, list):
        out = set(t)
    else:
        out = set()
        for sub in schema.get("oneOf") or []:
            out |= types(sub)
    out.discard("null")
    return out


def properties(schema: Mapping[str, Any] | None) -> dict[str, Schema]:
    return resolve(schema).get("properties") or {}


def property_schema(schema: Mapping[str, Any] | None, field: str) -> Schema | None:
    """The raw property schema (keeps its ``x-kubernetes-patch-*`` keys)."""
    return properties(schema).get(field)


def items_schema(schema: Mapping[str, Any] | None) -> Schema:
    return resolve((resolve(schema).get("items")) or {})


def additional_schema(schema: Mapping[str, Any] | None) -> Schema | None:
    """The value schema of a map type (``additionalProperties``), if any."""
    extra = resolve(schema).get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def is_preserve_unknown(schema: Mapping[str, Any] | None) -> bool:
    """RawExtension-like or unconstrained objects: any field is allowed below them."""
    res = resolve(schema)
    if res.get("x-kubernetes-preserve-unknown-fields"):
        return True
    return "object" in types(res) and not res.get("properties") and \
        "additionalProperties" not in res


def field_schema(root: ResourceInfo | str, path: str | Sequence[str]) -> Schema | None:
    """The property schema at a dotted path below a kind or a definition name.

    ``field_schema(pods_info, "spec.containers")`` returns the containers property (with
    its patch strategy and merge key); list items are entered implicitly.
    """
    if isinstance(root, ResourceInfo):
        current: Schema | None = definition_for(root)
    else:
        current = definitions().get(root)
    parts = path.split(".") if isinstance(path, str) else list(path)
    prop: Schema | None = current
    for part in parts:
        if current is None:
            return None
        resolved = resolve(current)
        while "array" in types(resolved) and "properties" not in resolved:
            resolved = items_schema(resolved)
        prop = (resolved.get("properties") or {}).get(part)
        if prop is None:
            extra = additional_schema(resolved)
            if extra is None:
                return None
            prop = extra
        current = prop
    return prop


def patch_meta(prop: Mapping[str, Any] | None) -> tuple[str, str]:
    """(patch strategy, merge key) of a property; ``("", "")`` when it has none."""
    if not prop:
        return "", ""
    return prop.get("x-kubernetes-patch-strategy") or "", prop.get(
        "x-kubernetes-patch-merge-key") or ""


def list_meta(prop: Mapping[str, Any] | None) -> tuple[str, tuple[str, ...]]:
    """(x-kubernetes-list-type, list-map-keys) for server-side apply."""
    if not prop:
        return "", ()
    return prop.get("x-kubernetes-list-type") or "", tuple(
        prop.get("x-kubernetes-list-map-keys") or ())


# --- served documents ------------------------------------------------------------------


def _referenced(names: Iterable[str]) -> list[str]:
    """The definitions reachable from ``names`` (in discovery order)."""
    defs = definitions()
    out: dict[str, None] = {}
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in out or name not in defs:
            continue
        out[name] = None
        stack.extend(_refs_in(defs[name]))
    return list(out)


def _refs_in(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            found.append(ref[len(_REF_PREFIX):])
        for key, value in node.items():
            if key != "$ref":
                found.extend(_refs_in(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_refs_in(value))
    return found


def _single_type(value: Any) -> Any:
    if isinstance(value, list):
        non_null = [t for t in value if t != "null"]
        return non_null[0] if non_null else "object"
    return value


def _convert(node: Any, ref_base: str, v3: bool, top: bool = False) -> Any:
    """JSON Schema (draft with null types) -> OpenAPI v2 or v3 schema objects."""
    if isinstance(node, list):
        return [_convert(v, ref_base, v3) for v in node]
    if not isinstance(node, dict):
        return node
    if "oneOf" in node and all(isinstance(s, dict) and set(s) == {"type"}
                               for s in node["oneOf"]):
        kinds_ = [_single_type(s["type"]) for s in node["oneOf"]]
        out: dict[str, Any] = {k: v for k, v in node.items() if k != "oneOf"}
        if set(kinds_) == {"string", "integer"}:
            if v3:
                out["x-kubernetes-int-or-string"] = True
                out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            else:
                out.update({"type": "string", "format": "int-or-string"})
        elif v3:
            out["oneOf"] = [{"type": t} for t in kinds_]
        else:
            out["type"] = "string"
        return out
    out = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(_REF_PREFIX):
            out[key] = ref_base + value[len(_REF_PREFIX):]
        elif key == "type":
            out[key] = _single_type(value)
        elif key == "properties" and isinstance(value, dict):
            props = {}
            for pname, pschema in value.items():
                converted = _convert(pschema, ref_base, v3)
                if top and pname in ("apiVersion", "kind") and isinstance(converted, dict):
                    converted.pop("enum", None)
                props[pname] = converted
            out[key] = props
        else:
            out[key] = _convert(value, ref_base, v3)
    if v3 and "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
        out.setdefault("default", {})
    return out


def _converted(names: Iterable[str], ref_base: str, v3: bool) -> dict[str, Schema]:
    defs = definitions()
    return {n: _convert(copy.deepcopy(defs[n]), ref_base, v3, top=True) for n in names}


def _served_definition_names(resources: Iterable[ResourceInfo]) -> list[str]:
    roots: list[str] = []
    for info in resources:
        for kind in (info.kind, info.list_kind):
            def_name = definition_name(info.group, info.version, kind)
            if def_name:
                roots.append(def_name)
    # Status and the meta types every group document carries upstream.
    roots += ["io.k8s.apimachinery.pkg.apis.meta.v1.Status",
              "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
              "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"]
    return sorted(_referenced(roots))


@functools.lru_cache(maxsize=1)
def openapi_v2() -> dict[str, Any]:
    """The swagger 2.0 document (``/openapi/v2``) for every served kind."""
    names = _served_definition_names(kinds.RESOURCES)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": SCHEMA_VERSION},
        "paths": {},
        "definitions": _converted(names, "#/definitions/", v3=False),
    }


def _gv_path(group_version: str) -> str:
    return f"api/{group_version}" if "/" not in group_version else f"apis/{group_version}"


def _parse_gv(group_version: str) -> tuple[str, str]:
    """``v1``, ``api/v1``, ``apps/v1`` or ``apis/apps/v1`` -> (group, version)."""
    gv = group_version.strip("/")
    if gv.startswith("api/"):
        gv = gv[len("api/"):]
    elif gv.startswith("apis/"):
        gv = gv[len("apis/"):]
    group, _, version = gv.rpartition("/")
    return group, version


@functools.lru_cache(maxsize=64)
def _v3_document(group: str, version: str) -> str:
    served = kinds.resources_in(group, version)
    if not served:
        raise KeyError(f"{group}/{version}" if group else version)
    names = _served_definition_names(served)
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SCHEMA_VERSION},
        "paths": {},
        "components": {"schemas": _converted(names, "#/components/schemas/", v3=True)},
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def openapi_v3(group_version: str) -> dict[str, Any]:
    """The ``/openapi/v3/<api/v1|apis/group/version>`` document; KeyError if not served."""
    group, version = _parse_gv(group_version)
    return json.loads(_v3_document(group, version))


def openapi_v3_bytes(group_version: str) -> bytes:
    """The same document pre-serialised (what the server sends; it never changes)."""
    group, version = _parse_gv(group_version)
    return _v3_document(group, version).encode()


def openapi_v3_hash(group_version: str) -> str:
    return hashlib.sha512(openapi_v3_bytes(group_version)).hexdigest().upper()


def openapi_v3_paths() -> dict[str, Any]:
    """The ``/openapi/v3`` index: one serverRelativeURL per served group version."""
    paths: dict[str, Any] = {}
    for group, versions in kinds.group_versions().items():
        for version in versions:
            gv = f"{group}/{version}" if group else version
            path = _gv_path(gv)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash="
                                                f"{openapi_v3_hash(gv)}"}
    return {"paths": paths}
