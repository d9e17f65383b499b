"""Server-side field validation: unknown fields against upstream's schema.

``fieldValidation=Strict`` (what kubectl sends) refuses a body with unknown fields with
400 ``strict decoding error: unknown field "spec.foo"``; ``Warn`` (the default) answers
with a ``Warning: 299`` header per field; ``Ignore`` drops them silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tinykube.api import errors, schema
from tinykube.api.kinds import ResourceInfo

MAX_REPORTED = 100


def unknown_fields(info: ResourceInfo, obj: Mapping[str, Any]) -> list[str]:
    """Dotted paths of fields the kind's schema does not know, in document order."""
    root = schema.definition_for(info)
    if root is None:
        return []
    if _known(root, obj):
        return []
    found: list[str] = []
    _walk(root, obj, "", found)
    return found


def _known(node_schema: Mapping[str, Any], value: Any) -> bool:
    """True when ``_walk`` would find nothing (the common case, without building paths)."""
    if isinstance(value, dict):
        node = _node(node_schema)
        if node.preserve_unknown:
            return True
        props = node.properties
        if props:
            if not value.keys() <= props.keys():
                return False
            for key, sub in value.items():
                if isinstance(sub, (dict, list)) and not _known(props[key], sub):
                    return False
            return True
        extra = node.additional
        if extra is not None:
            for sub in value.values():
                if isinstance(sub, (dict, list)) and not _known(extra, sub):
                    return False
    elif isinstance(value, list):
        items = _node(node_schema).items
        if items is not None:
            for sub in value:
                if isinstance(sub, (dict, list)) and not _known(items, sub):
                    return False
    return True


@dataclass(frozen=True)
class _Node:
    """What the walk needs of one schema node, resolved once per node."""

    preserve_unknown: bool
    properties: Mapping[str, Any] | None
    additional: Mapping[str, Any] | None
    items: Mapping[str, Any] | None


_NODES: dict[int, tuple[Mapping[str, Any], _Node]] = {}


def _node(node_schema: Mapping[str, Any]) -> _Node:
    cached = _NODES.get(id(node_schema))
    if cached is not None and cached[0] is node_schema:
        return cached[1]
    resolved = schema.resolve(node_schema)
    items = resolved.get("items")
    node = _Node(schema.is_preserve_unknown(resolved), resolved.get("properties") or None,
                 schema.additional_schema(resolved), items if isinstance(items, dict) else None)
    _NODES[id(node_schema)] = (node_schema, node)
    return node


def _walk(node_schema: Mapping[str, Any], value: Any, path: str, found: list[str]) -> None:
    if len(found) >= MAX_REPORTED or value is None:
        return
    node = _node(node_schema)
    if isinstance(value, dict):
        if node.preserve_unknown:
            return
        props = node.properties
        if props:
            for key, sub in value.items():
                child = f"{path}.{key}" if path else key
                prop = props.get(key)
                if prop is None:
                    found.append(child)
                else:
                    _walk(prop, sub, child, found)
            return
        extra = node.additional
        if extra is not None:
            for key, sub in value.items():
                _walk(extra, sub, f"{path}[{key}]" if path else key, found)
        return
    if isinstance(value, list):
        items = node.items
        if items is not None:
            for i, sub in enumerate(value):
                _walk(items, sub, f"{path}[{i}]", found)


def check(info: ResourceInfo, obj: Mapping[str, Any], mode: str) -> list[str]:
    """Apply the fieldValidation mode; returns the warnings to send (Warn mode)."""
    if mode == "Ignore":
        return []
    unknown = unknown_fields(info, obj)
    if not unknown:
        return []
    if mode == "Strict":
        raise errors.bad_request("strict decoding error: " +
                                 ", ".join(f'unknown field "{f}"' for f in unknown))
    return [f'unknown field "{f}"' for f in unknown]


def warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    return [("Warning", '299 - "' + w.replace('"', '\\"') + '"') for w in warnings]
