"""Field sets: which fields of an object a manager owns, in upstream's FieldsV1 encoding.

A field path is a tuple of elements: ``("f", name)`` for a struct field or map key,
``("k", ((key, json), ...))`` for the item of an associative list (list-map keys from the
schema, else the patch merge key), ``("v", json)`` for a member of a set of primitives.
FieldsV1 spells them ``f:name``, ``k:{"name":"nginx"}`` and ``v:"value"``; a ``.`` child
marks an element that is itself owned as well as some of its children
(sigs.k8s.io/structured-merge-diff).
"""

from __future__ import annotations

import functools
import json
from typing import Any, Iterable, Mapping

import orjson

from tinykube.api import schema

Elem = tuple[str, Any]
FieldPath = tuple[Elem, ...]
FieldSet = set[FieldPath]

# Server-owned metadata that is never part of any manager's set.
_SYSTEM_METADATA = ("name", "namespace", "generateName", "uid", "resourceVersion",
                    "generation", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "managedFields", "selfLink")


def _dumps(value: Any) -> str:
    if value is None or type(value) in (int, bool) or (type(value) is str and len(value) <= 256):
        return _dumps_scalar(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


@functools.lru_cache(maxsize=8192, typed=True)
def _dumps_scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def child_schema(node: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if not node:
        return None
    compiled = schema.node(node)
    if compiled.preserve_unknown:
        return None
    if compiled.properties and key in compiled.properties:
        return compiled.properties[key]
    return compiled.additional


def items_schema(node: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if not node:
        return None
    return schema.node(node).items


def list_mode(node: Mapping[str, Any] | None) -> tuple[str, tuple[str, ...]]:
    """("map", keys) | ("set", ()) | ("atomic", ()) for a list property."""
    if not node:
        return "atomic", ()
    list_type, keys = schema.list_meta(node)
    strategy, merge_key = schema.patch_meta(node)
    if list_type == "map" and keys:
        return "map", keys
    if list_type == "set":
        return "set", ()
    if list_type == "atomic":
        return "atomic", ()
    if merge_key:
        return "map", (merge_key,)
    if "merge" in strategy.split(","):
        return "set", ()
    return "atomic", ()


# Defaults of list-map key fields, which upstream's OpenAPI carries as "default" and the
# shipped schemas omit: an applied port without ``protocol`` is the live TCP port.
KEY_DEFAULTS: dict[str, Any] = {"protocol": "TCP"}


def item_key(item: Any, keys: tuple[str, ...]) -> Elem | None:
    """The ``k:`` element of an associative list item (None when a key field is missing)."""
    if not isinstance(item, dict):
        return None
    values = {k: item[k] if k in item else KEY_DEFAULTS.get(k) for k in keys}
    present = [k for k in keys if values[k] is not None]
    if not present or present[0] != keys[0]:
        return None
    return ("k", tuple(sorted((k, _dumps(values[k])) for k in present)))


def _collect(value: Any, node: Mapping[str, Any] | None, prefix: FieldPath,
             out: FieldSet) -> None:
    if isinstance(value, dict):
        if not value:
            if prefix:
                out.add(prefix)
            return
        for key, item in value.items():
            _collect(item, child_schema(node, key), prefix + (("f", key),), out)
    elif isinstance(value, list):
        mode, keys = list_mode(node)
        if mode == "atomic" or not value:
            out.add(prefix)
            return
        if mode == "set":
            for item in value:
                out.add(prefix + (("v", _dumps(item)),))
            return
        elements = [item_key(item, keys) for item in value]
        if any(e is None for e in elements):
            out.add(prefix)
            return
        sub = items_schema(node)
        for item, elem in zip(value, elements):
            path = prefix + (elem,)  # type: ignore[operator]
            out.add(path)
            _collect(item, sub, path, out)
    else:
        out.add(prefix)


def _trimmed(obj: Mapping[str, Any], subresource: str | None) -> dict[str, Any]:
    """The part of an object managers can own: no type meta, no system metadata, and
    either only the status (status writes) or everything but it."""
    if subresource == "status":
        return {"status": obj["status"]} if "status" in obj else {}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    md = out.get("metadata")
    if isinstance(md, dict):
        md = {k: v for k, v in md.items() if k not in _SYSTEM_METADATA}
        if md:
            out["metadata"] = md
        else:
            out.pop("metadata")
    return out


def field_set(root: Mapping[str, Any] | None, obj: Mapping[str, Any],
              subresource: str | None = None) -> FieldSet:
    """Every owned path of ``obj`` under the kind's schema ``root``."""
    out: FieldSet = set()
    _collect(_trimmed(obj, subresource), root, (), out)
    return out


def changes(root: Mapping[str, Any] | None, old: Mapping[str, Any], new: Mapping[str, Any],
            subresource: str | None = None) -> tuple[FieldSet, FieldSet]:
    """(changed, removed) between two versions of an object: the paths of ``new`` that
    ``old`` lacks or holds another value at, and the paths only ``old`` has. The same as
    comparing both whole field sets, but parts equal in both are skipped unwalked: a
    status write leaves the spec alone, an update of the spec the status."""
    changed: FieldSet = set()
    removed: FieldSet = set()
    _diff(_trimmed(old, subresource), _trimmed(new, subresource), root, (), changed, removed)
    return changed, removed


def _diff(old: Any, new: Any, node: Mapping[str, Any] | None, prefix: FieldPath,
          changed: FieldSet, removed: FieldSet) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict) and old and new:
        for key in old.keys() | new.keys():
            path = prefix + (("f", key),)
            if key not in new:
                _collect(old[key], child_schema(node, key), path, removed)
            elif key not in old:
                _collect(new[key], child_schema(node, key), path, changed)
            else:
                _diff(old[key], new[key], child_schema(node, key), path, changed, removed)
        return
    if isinstance(old, list) and isinstance(new, list) and old and new and _diff_items(
            old, new, node, prefix, changed, removed):
        return
    old_set: FieldSet = set()
    new_set: FieldSet = set()
    _collect(old, node, prefix, old_set)
    _collect(new, node, prefix, new_set)
    inner = inner_paths(new_set)
    depth = len(prefix)
    changed.update(p for p in new_set if p not in old_set or (
        p not in inner and value_at(old, p[depth:]) != value_at(new, p[depth:])))
    removed.update(old_set - new_set)


def _keyed(items: list, keys: tuple[str, ...]) -> dict[Elem, Any] | None:
    """An associative list's items by their ``k:`` element; None unless every item has a
    key of its own."""
    out = {}
    for item in items:
        elem = item_key(item, keys)
        if elem is None or elem in out:
            return None
        out[elem] = item
    return out


def _diff_items(old: list, new: list, node: Mapping[str, Any] | None, prefix: FieldPath,
                changed: FieldSet, removed: FieldSet) -> bool:
    """``_diff`` for two associative lists, item by item (a node's conditions differ in one
    heartbeat); False, with nothing done, for lists of any other kind."""
    mode, keys = list_mode(node)
    if mode != "map":
        return False
    old_items, new_items = _keyed(old, keys), _keyed(new, keys)
    if old_items is None or new_items is None:
        return False
    sub = items_schema(node)
    for elem, item in new_items.items():
        path = prefix + (elem,)
        if elem in old_items:
            _diff(old_items[elem], item, sub, path, changed, removed)
        else:
            changed.add(path)
            _collect(item, sub, path, changed)
    for elem, item in old_items.items():
        if elem not in new_items:
            path = prefix + (elem,)
            removed.add(path)
            _collect(item, sub, path, removed)
    return True


def inner_paths(paths: FieldSet) -> FieldSet:
    """The members some other member lies below (the ones that are not leaves)."""
    return {p[:i] for p in paths for i in range(1, len(p))} & paths


# --- FieldsV1 encoding -----------------------------------------------------------------


def _elem_text(elem: Elem) -> str:
    value = elem[1]
    if type(value) is str and len(value) > 256:  # keep the memo small
        return _elem_text_of(elem)
    return _elem_text_cached(elem)


def _elem_text_of(elem: Elem) -> str:
    kind, value = elem
    if kind == "f":
        return f"f:{value}"
    if kind == "k":
        return "k:{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in value) + "}"
    if kind == "v":
        return f"v:{value}"
    return f"i:{value}"


_elem_text_cached = functools.lru_cache(maxsize=16384)(_elem_text_of)


def _parse_elem(text: str) -> Elem:
    return _parse_elem_of(text) if len(text) > 256 else _parse_elem_cached(text)


def _parse_elem_of(text: str) -> Elem:
    kind, _, rest = text.partition(":")
    if kind == "f":
        return ("f", rest)
    if kind == "k":
        decoded = json.loads(rest)
        return ("k", tuple(sorted((k, _dumps(v)) for k, v in decoded.items())))
    if kind == "v":
        return ("v", _dumps(json.loads(rest)))
    if kind == "i":
        return ("i", int(rest))
    raise ValueError(f"invalid field path element {text!r}")


_parse_elem_cached = functools.lru_cache(maxsize=16384)(_parse_elem_of)


def encode(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """A field set as a FieldsV1 object (a fresh one: callers may keep and change it)."""
    return _copy_tree(_encoded(frozenset(paths)))


def _copy_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy_tree(v) for k, v in node.items()}


@functools.lru_cache(maxsize=256)
def _encoded(members: frozenset[FieldPath]) -> dict[str, Any]:
    """encode's result, shared (never handed out): objects of one shape have one field set."""
    tree: dict[str, Any] = {}
    ends = []
    for path in members:
        node = tree
        for elem in path:
            node = node.setdefault(_elem_text(elem), {})
        ends.append(node)
    for node in ends:
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(tree)


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    keys = sorted(node, key=lambda k: (k != ".", k))
    return {k: _sorted_tree(node[k]) for k in keys}


def decode(fields: Mapping[str, Any] | None) -> FieldSet:
    """A FieldsV1 object back to a field set (malformed entries are ignored)."""
    if type(fields) is dict:
        try:
            key = orjson.dumps(fields)
        except TypeError:
            pass
        else:
            if len(key) <= 65536:
                return set(_decoded(key))
    return _decode(fields)


@functools.lru_cache(maxsize=512)
def _decoded(raw: bytes) -> frozenset[FieldPath]:
    """decode by the FieldsV1 JSON: every write of an object reads its unchanged entries."""
    return frozenset(_decode(orjson.loads(raw)))


def _decode(fields: Mapping[str, Any] | None) -> FieldSet:
    out: FieldSet = set()

    def walk(node: Mapping[str, Any], prefix: FieldPath) -> None:
        for key, child in node.items():
            if key == ".":
                if prefix:
                    out.add(prefix)
                continue
            try:
                path = prefix + (_parse_elem(key),)
            except (ValueError, json.JSONDecodeError):
                continue
            if isinstance(child, dict) and child:
                walk(child, path)
            else:
                out.add(path)

    if isinstance(fields, Mapping):
        walk(fields, ())
    return out


# --- reading and removing values by path ---------------------------------------------------

_MISSING = object()


def _find_item(items: list, elem: Elem) -> int | None:
    wanted = dict(elem[1])
    for i, item in enumerate(items):
        if isinstance(item, dict) and all(_dumps(item[k] if k in item else KEY_DEFAULTS.get(k)) == v
                                          for k, v in wanted.items()):  # as item_key() names it
            return i
    return None


def value_at(obj: Any, path: FieldPath) -> Any:
    """The value at ``path`` (``_MISSING`` sentinel when absent; see ``has_value``)."""
    cur = obj
    for kind, value in path:
        if kind == "f":
            if not isinstance(cur, dict) or value not in cur:
                return _MISSING
            cur = cur[value]
        elif kind == "k":
            if not isinstance(cur, list):
                return _MISSING
            idx = _find_item(cur, (kind, value))
            if idx is None:
                return _MISSING
            cur = cur[idx]
        elif kind == "v":
            if not isinstance(cur, list) or not any(_dumps(v) == value for v in cur):
                return _MISSING
            cur = json.loads(value)
        else:
            if not isinstance(cur, list) or not 0 <= int(value) < len(cur):
                return _MISSING
            cur = cur[int(value)]
    return cur


def has_value(obj: Any, path: FieldPath) -> bool:
    return value_at(obj, path) is not _MISSING


def remove_path(obj: Any, path: FieldPath) -> None:
    """Delete the field, list item or set member at ``path`` in place (no-op if absent)."""
    if not path:
        return
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    if parent is _MISSING:
        return
    kind, value = path[-1]
    if kind == "f" and isinstance(parent, dict):
        parent.pop(value, None)
    elif kind == "k" and isinstance(parent, list):
        idx = _find_item(parent, path[-1])
        if idx is not None:
            parent.pop(idx)
    elif kind == "v" and isinstance(parent, list):
        parent[:] = [v for v in parent if _dumps(v) != value]


def path_string(path: FieldPath) -> str:
    """structured-merge-diff's path rendering: ``.spec.containers[name="nginx"].image``."""
    parts = []
    for kind, value in path:
        if kind == "f":
            parts.append(f".{value}")
        elif kind == "k":
            parts.append("[" + ",".join(f"{k}={v}" for k, v in value) + "]")
        elif kind == "v":
            parts.append(f"[={value}]")
        else:
            parts.append(f"[{value}]")
    return "".join(parts)
