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


class _Check:
    """A schema node compiled for ``_clean``: its Node plus its children's, memoised."""

    __slots__ = ("node", "kids", "extra", "items", "nullable_items")

    def __init__(self, node: schema.Node):
        self.node = node
        self.kids: dict[str, _Check | None] = {}
        self.extra = _check(node.additional) if node.additional is not None else None
        self.items = _check(node.items) if node.items is not None else None
        self.nullable_items = node.items is None or "object" not in schema.node(node.items).types


_CHECKS: dict[int, tuple[Mapping[str, Any], _Check]] = {}
_PENDING = object()


def _check(raw: Mapping[str, Any]) -> _Check:
    cached = _CHECKS.get(id(raw))
    if cached is not None and cached[0] is raw:
        return cached[1]
    compiled = _Check.__new__(_Check)
    _CHECKS[id(raw)] = (raw, compiled)  # before the children: schemas may be recursive
    try:
        compiled.__init__(schema.node(raw))  # type: ignore[misc]
    except BaseException:
        del _CHECKS[id(raw)]
        raise
    return compiled


def _clean(value: Any, check: _Check) -> bool:
    """True when ``_walk`` would find nothing (the common case, without building paths)."""
    node = check.node
    if node.types and type(value) not in node.accepts and not _allows(node.types, value):
        return False
    if isinstance(value, dict):
        if node.preserve_unknown:
            return True
        props = node.properties
        if props:
            kids = check.kids
            for key, item in value.items():
                if item is None:
                    continue
                kid = kids.get(key, _PENDING)
                if kid is _PENDING:
                    raw = props.get(key)
                    kid = kids[key] = _check(raw) if raw is not None else None
                if kid is None:
                    continue
                t = type(item)
                if t is not dict and t is not list and t in kid.node.accepts:
                    continue  # a scalar of an allowed type: nothing below it
                if not _clean(item, kid):
                    return False
            return True
        extra = check.extra
        if extra is not None:
            for item in value.values():
                if item is not None and not _clean(item, extra):
                    return False
    elif isinstance(value, list):
        items = check.items
        if items is not None:
            nullable = check.nullable_items
            for item in value:
                if item is None:
                    if not nullable:
                        return False
                elif not _clean(item, items):
                    return False
    return True


_ROOTS: dict[int, tuple[Mapping[str, Any], dict[str, _Check]]] = {}


def _root_kids(root: Mapping[str, Any]) -> dict[str, _Check]:
    """The compiled top-level properties of a kind's schema (as type_problems reads them)."""
    cached = _ROOTS.get(id(root))
    if cached is not None and cached[0] is root:
        return cached[1]
    kids = {key: _check(prop) for key, prop in (root.get("properties") or {}).items()
            if prop is not None}
    _ROOTS[id(root)] = (root, kids)
    return kids


def type_problems(info: ResourceInfo, obj: Any) -> list[TypeProblem]:
    """Every value of ``obj`` whose JSON type the kind's schema does not allow."""
    root = schema.definition_for(info)
    out: list[TypeProblem] = []
    if not isinstance(obj, dict):
        out.append(TypeProblem("", "", "", _json_kind(obj), info.kind, obj))
        return out
    if root is None:
        return out
    kids = _root_kids(root)
    for key, value in obj.items():
        kid = kids.get(key) if value is not None else None
        if kid is None:
            continue
        t = type(value)
        if t is not dict and t is not list and t in kid.node.accepts:
            continue
        if not _clean(value, kid):
            break
    else:
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
