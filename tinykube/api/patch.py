"""The three PATCH content types: JSON patch, JSON merge patch, strategic merge patch.

All functions are pure: they return a new object and never modify their inputs. Failures
raise :class:`ApiError` as kube-apiserver answers them: a patch that does not decode is
400 BadRequest, one that cannot be applied to the object (a failed ``test``, a missing
path, an unknown op) is 422.

Strategic merge patch follows k8s.io/apimachinery/pkg/util/strategicpatch: list merge keys
and strategies come from upstream's schema (containers by name, ports by containerPort,
volumeMounts by mountPath, conditions by type, ...); lists without a strategy are replaced
whole; the directives ``$patch`` (replace|delete|merge), ``$setElementOrder/<field>``,
``$retainKeys`` and ``$deleteFromPrimitiveList/<field>`` are honoured.
"""

from __future__ import annotations

from typing import Any, Mapping

from tinykube.api import errors, schema
from tinykube.api.kinds import ResourceInfo
from tinykube.api.meta import json_copy

Obj = dict[str, Any]

PATCH_DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"


def _unprocessable(message: str) -> errors.ApiError:
    return errors.ApiError(422, "Invalid", message)


# --- RFC 6902 JSON patch ---------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise _unprocessable(f"invalid JSON patch path {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f'JSON pointer must be empty or start with a "/": {path}')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list, token: str, path: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise _unprocessable(f"invalid array index {token!r} in {path}")
    idx = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if idx > limit:
        raise _unprocessable(f"index out of range: {idx} in {path}")
    return idx


def _missing_path(op: str, path: str) -> errors.ApiError:
    return _unprocessable(f'{op} operation does not apply: doc is missing path: "{path}": '
                          "missing value")


def _parent(doc: Any, tokens: list[str], path: str, op: str) -> Any:
    cur = doc
    for token in tokens[:-1]:
        if isinstance(cur, dict):
            if token not in cur:
                raise _missing_path(op, path)
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, path, allow_end=False)]
        else:
            raise _missing_path(op, path)
    return cur


def _existing(doc: Any, tokens: list[str], path: str, op: str) -> tuple[Any, Any]:
    """The container of the value at ``path`` and its key or index; the value must exist."""
    parent = _parent(doc, tokens, path, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(f"{op} operation does not apply: doc is missing key: "
                                 f"{path}: missing value")
        return parent, last
    if isinstance(parent, list):
        return parent, _index(parent, last, path, allow_end=False)
    raise _unprocessable(f"{op} operation does not apply: doc is missing path: {path}")


def _get(doc: Any, path: str, op: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent, key = _existing(doc, tokens, path, op)
    return parent[key]


def _add(doc: Any, path: str, value: Any, op: str = "add") -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise _missing_path(op, path)
    return doc


def _remove(doc: Any, path: str, op: str = "remove") -> tuple[Any, Any]:
    tokens = _pointer(path)
    if not tokens:
        raise _unprocessable(f"{op} operation does not apply: cannot remove the whole document")
    parent, key = _existing(doc, tokens, path, op)
    return doc, parent.pop(key)


def json_patch(obj: Any, ops: Any, *, owned: bool = False) -> Any:
    """Apply an RFC 6902 patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type "
                                 "jsonpatch.Patch")
    doc = obj if owned else json_copy(obj)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise errors.bad_request(f"json: cannot unmarshal {type(op).__name__} into Go "
                                     "value of type jsonpatch.Operation")
        kind = op["op"]
        path = op.get("path")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise _unprocessable(f"{kind} operation does not apply: missing value")
        if kind == "add":
            doc = _add(doc, path, json_copy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path, "replace")
            if _pointer(path):
                doc, _ = _remove(doc, path, "replace")
            doc = _add(doc, path, json_copy(op["value"]), "replace")
        elif kind == "move":
            source = op.get("from")
            if isinstance(source, str) and isinstance(path, str) and \
                    path.startswith(source + "/"):
                raise _unprocessable(f"move operation does not apply: cannot move {source} "
                                     f"into its own child {path}")
            doc, value = _remove(doc, source, "move")
            doc = _add(doc, path, value, "move")
        elif kind == "copy":
            value = json_copy(_get(doc, op.get("from"), "copy"))
            doc = _add(doc, path, value, "copy")
        elif kind == "test":
            try:
                current = _get(doc, path, "test")
            except errors.ApiError:
                current = _MISSING
            if current is _MISSING or not _json_equal(current, op["value"]):
                raise _unprocessable(f"testing value {path} failed: test failed")
        else:
            raise _unprocessable(f"Unexpected kind: {kind}")
    return doc


_MISSING = object()


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


# --- RFC 7386 JSON merge patch ---------------------------------------------------------


def merge_patch(obj: Any, patch: Any, *, owned: bool = False) -> Any:
    """Apply an RFC 7386 merge patch: null deletes, objects merge, anything else replaces.

    ``owned``: ``obj`` is the caller's private copy, which may be changed and returned."""
    if not isinstance(patch, dict):
        return json_copy(patch)
    result = (obj if owned else json_copy(obj)) if isinstance(obj, dict) else {}
    _merge_into(result, patch)
    return result


def _merge_into(result: dict, patch: dict) -> None:
    """merge_patch on ``result`` in place (a private copy: nothing in it is shared)."""
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            if not isinstance(current, dict):
                current = result[key] = {}
            _merge_into(current, value)
        else:
            result[key] = json_copy(value)


# --- strategic merge patch -------------------------------------------------------------


def strategic_merge_patch(info: ResourceInfo | None, obj: Any, patch: Any, *,
                          owned: bool = False) -> Any:
    """Apply a strategic merge patch using the kind's upstream schema.

    Kinds without a schema (or fields the schema does not know) fall back to JSON merge
    semantics, as upstream does for unstructured objects.
    """
    if not isinstance(patch, dict):
        raise errors.bad_request("unable to decode the strategic merge patch: expected a "
                                 "JSON object")
    root = schema.definition_for(info) if info is not None else None
    original = (obj if owned else json_copy(obj)) if isinstance(obj, dict) else {}
    result = _merge_map(original, patch, root)
    return {} if result is _DELETE else result


_DELETE = object()


def _strategy(prop: Mapping[str, Any] | None) -> tuple[set[str], str]:
    strategy, merge_key = schema.patch_meta(prop)
    return set(filter(None, strategy.split(","))), merge_key


def _merge_map(original: Obj, patch: Obj, node_schema: Mapping[str, Any] | None) -> Any:
    """Merge ``patch`` into ``original`` (already a private copy) per the schema."""
    directive = patch.get(PATCH_DIRECTIVE)
    if directive is not None:
        if directive == "delete":
            return _DELETE
        if directive == "replace":
            return _strip_directives(patch)
        if directive != "merge":
            raise errors.bad_request(f"Unknown patch type: {directive} in map: {patch}")
    retain = patch.get(RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list):
            raise errors.bad_request(f"invalid $retainKeys directive: {retain!r}")
        keep = set(retain)
        for key in list(original):
            if key not in keep:
                del original[key]
    resolved = schema.resolve(node_schema) if node_schema else None
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key in (PATCH_DIRECTIVE, RETAIN_KEYS):
            continue
        if key.startswith(SET_ELEMENT_ORDER):
            orders[key[len(SET_ELEMENT_ORDER):]] = value if isinstance(value, list) else []
            continue
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            field = key[len(DELETE_FROM_PRIMITIVE_LIST):]
            current = original.get(field)
            if isinstance(current, list) and isinstance(value, list):
                original[field] = [v for v in current if v not in value]
            continue
        if value is None:
            original.pop(key, None)
            continue
        prop = _child(resolved, key)
        if isinstance(value, dict):
            current = original.get(key)
            if not isinstance(current, dict):
                current = {}
            merged = _merge_map(current, value, prop)
            if merged is _DELETE:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _merge_list(original.get(key), value, prop)
        else:
            original[key] = json_copy(value)
    for field, order in orders.items():
        if isinstance(original.get(field), list):
            original[field] = _apply_order(original[field], order,
                                           _strategy(_child(resolved, field))[1])
    return original


def _child(resolved: Mapping[str, Any] | None, key: str) -> Mapping[str, Any] | None:
    if not resolved:
        return None
    props = resolved.get("properties") or {}
    if key in props:
        return props[key]
    extra = resolved.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if k not in (PATCH_DIRECTIVE, RETAIN_KEYS)
                and not k.startswith(SET_ELEMENT_ORDER)
                and not k.startswith(DELETE_FROM_PRIMITIVE_LIST)}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return json_copy(value)


def _merge_list(original: Any, patch: list, prop: Mapping[str, Any] | None) -> list:
    strategies, merge_key = _strategy(prop)
    if "merge" not in strategies:
        return _strip_directives([v for v in patch
                                  if not (isinstance(v, dict) and v.get(PATCH_DIRECTIVE))])
    current = list(original) if isinstance(original, list) else []
    # A {"$patch": "replace"} element replaces the whole list with the other elements.
    if any(isinstance(v, dict) and v.get(PATCH_DIRECTIVE) == "replace" for v in patch):
        return _strip_directives([v for v in patch
                                  if not (isinstance(v, dict) and PATCH_DIRECTIVE in v
                                          and set(v) == {PATCH_DIRECTIVE})])
    if not merge_key:
        # A list of primitives with the merge strategy (e.g. finalizers): union.
        for v in patch:
            if not any(_json_equal(v, c) for c in current):
                current.append(json_copy(v))
        return current
    item_schema = schema.resolve((schema.resolve(prop) or {}).get("items")) if prop else None
    for item in patch:
        if not isinstance(item, dict):
            raise errors.bad_request(f"invalid list element {item!r}: expected an object "
                                     f"with merge key {merge_key!r}")
        if merge_key not in item:
            raise errors.bad_request(f"map: {item} does not contain declared merge key: "
                                     f"{merge_key}")
        idx = _find(current, merge_key, item[merge_key])
        if item.get(PATCH_DIRECTIVE) == "delete":
            if idx is not None:
                current.pop(idx)
            continue
        if idx is None:
            current.append(_strip_directives(item))
        else:
            merged = _merge_map(json_copy(current[idx]), item, item_schema)
            if merged is _DELETE:
                current.pop(idx)
            else:
                current[idx] = merged
    return current


def _find(items: list, merge_key: str, value: Any) -> int | None:
    for i, item in enumerate(items):
        if isinstance(item, dict) and _json_equal(item.get(merge_key), value):
            return i
    return None


def _apply_order(items: list, order: list, merge_key: str) -> list:
    """``$setElementOrder``: listed elements first in that order, the rest after."""
    def ident(item: Any) -> Any:
        if merge_key and isinstance(item, dict):
            return item.get(merge_key)
        return item

    wanted = [ident(o) for o in order]
    ranked = sorted(range(len(items)),
                    key=lambda i: (wanted.index(ident(items[i])) if ident(items[i]) in wanted
                                   else len(wanted) + i))
    return [items[i] for i in ranked]
