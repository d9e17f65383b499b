"""Type checks at decode time: JSON values whose type the schema does not allow.

kube-apiserver decodes a body into typed Go structs, so ``replicas: true`` fails before
defaulting or validation with 400 ``json: cannot unmarshal bool into Go struct field
DeploymentSpec.spec.replicas of type int32``. tinykube keeps objects as JSON, so this
module performs the same check against upstream's schema; everything downstream
(defaulting, validation, printing) may then rely on well-typed input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tinykube.api import errors, schema
from tinykube.api.kinds import ResourceInfo


@dataclass(frozen=True)
class TypeProblem:
    """One value of the wrong JSON type."""

    path: str          # dotted JSON path with list indices, e.g. spec.containers[0].image
    go_path: str       # the same without indices, as Go's decoder prints it
    struct: str        # the Go struct holding the field (DeploymentSpec)
    json_kind: str     # bool | string | number | array | object
    go_type: str       # int32 | string | bool | []Container | ...
    value: Any

    def message(self) -> str:
        if self.struct:
            return (f"json: cannot unmarshal {self.json_kind} into Go struct field "
                    f"{self.struct}.{self.go_path} of type {self.go_type}")
        return f"json: cannot unmarshal {self.json_kind} into Go value of type {self.go_type}"


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(def_name: str | None) -> str:
    return def_name.rsplit(".", 1)[-1] if def_name else ""


def _go_type(node: Mapping[str, Any]) -> str:
    name = schema.ref_name(node)
    if name:
        return _short(name)
    resolved = schema.resolve(node)
    kinds = schema.types(resolved)
    if "array" in kinds:
        return "[]" + _go_type(resolved.get("items") or {})
    if "object" in kinds:
        extra = resolved.get("additionalProperties")
        return "map[string]" + (_go_type(extra) if isinstance(extra, dict) else "interface {}")
    if "integer" in kinds:
        return resolved.get("format") or "int64"
    if "number" in kinds:
        return "float64"
    if "boolean" in kinds:
        return "bool"
    return "string"


def _allows(kinds: set[str], value: Any) -> bool:
    if not kinds:
        return True
    if isinstance(value, bool):
        return "boolean" in kinds
    if isinstance(value, int):
        return bool(kinds & {"integer", "number"})
    if isinstance(value, float):
        return "number" in kinds or ("integer" in kinds and value.is_integer())
    if isinstance(value, str):
        return "string" in kinds
    if isinstance(value, list):
        return "array" in kinds
    if isinstance(value, dict):
        return "object" in kinds
    return True


def _walk(value: Any, raw: Mapping[str, Any] | None, path: str, go_path: str, struct: str,
          out: list[TypeProblem]) -> None:
    if raw is None or value is None:
        return
    node = schema.node(raw)
    if not _allows(node.types, value):
        out.append(TypeProblem(path, go_path, struct, _json_kind(value), _go_type(raw), value))
        return
    if isinstance(value, dict):
        if node.preserve_unknown:
            return
        props = node.properties
        if props:
            owner = _short(node.ref) or struct
            for key, item in value.items():
                child = props.get(key)
                if child is not None:
                    _walk(item, child, f"{path}.{key}" if path else key,
                          f"{go_path}.{key}" if go_path else key, owner, out)
            return
        extra = node.additional
        if extra is not None:
            for key, item in value.items():
                _walk(item, extra, f"{path}[{key}]", go_path, struct, out)
    elif isinstance(value, list):
        items = node.items
        if items is not None:
            item_kinds = schema.node(items).types
            for i, item in enumerate(value):
                if item is None and "object" in item_kinds:
                    # Go would decode a zero struct; no client sends this on purpose, and
                    # refusing it keeps every consumer free of null checks.
                    out.append(TypeProblem(f"{path}[{i}]", go_path, struct, "null",
                                           _go_type(items), None))
                    continue
                _walk(item, items, f"{path}[{i}]", go_path, struct, out)


def type_problems(info: ResourceInfo, obj: Any) -> list[TypeProblem]:
    """Every value of ``obj`` whose JSON type the kind's schema does not allow."""
    root = schema.definition_for(info)
    out: list[TypeProblem] = []
    if not isinstance(obj, dict):
        out.append(TypeProblem("", "", "", _json_kind(obj), info.kind, obj))
        return out
    if root is None:
        return out
    for key, value in obj.items():
        prop = (root.get("properties") or {}).get(key)
        _walk(value, prop, key, key, info.kind, out)
    return out


def decode_error(info: ResourceInfo, obj: Any) -> errors.ApiError | None:
    """The 400 BadRequest kube-apiserver answers for a body that does not decode (the first
    problem, as Go's decoder stops there), or None when every type is right."""
    problems = type_problems(info, obj)
    if not problems:
        return None
    return errors.bad_request(f'{info.kind} in version "{info.version}" cannot be handled as '
                              f"a {info.kind}: {problems[0].message()}")
