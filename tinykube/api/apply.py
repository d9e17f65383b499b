"""Server-side apply and ``metadata.managedFields`` bookkeeping.

``server_side_apply`` merges an applied configuration into the live object the way
structured-merge-diff does: the applier becomes the owner of exactly the fields it sent,
fields it stops sending are removed unless another manager owns them, and changing a
field another manager owns (to a different value) is a 409 conflict unless ``force``.
``record_update`` keeps managedFields right for ordinary writes (operation Update): the
writer takes over the fields it changed, and removed fields leave every set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from tinykube.api import decoding, errors, fieldsets, meta, schema
from tinykube.api.fieldsets import FieldPath, FieldSet
from tinykube.api.kinds import ResourceInfo
from tinykube.api.meta import json_copy

Obj = dict[str, Any]


@dataclass
class ManagerEntry:
    """One ``managedFields`` item, with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    fields: FieldSet = field(default_factory=set)
    time: str = ""
    subresource: str = ""
    # The entry as read, reused when nothing about it changed (encoding is the slow part).
    raw: dict[str, Any] | None = None
    read_fields: frozenset = frozenset()

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def describe(self) -> str:
        """How conflicts name a manager: an updater ``"kubectl-edit" using apps/v1``, an
        applier just ``"kubectl"`` (plus ``with subresource "status"`` when it applies)."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def to_dict(self) -> dict[str, Any]:
        if self.raw is not None and self.fields == self.read_fields and \
                self.time == (self.raw.get("time") or "") and \
                self.api_version == (self.raw.get("apiVersion") or ""):
            return self.raw
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                               "apiVersion": self.api_version, "time": self.time or meta.now(),
                               "fieldsType": "FieldsV1",
                               "fieldsV1": fieldsets.encode(self.fields)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def read_managed_fields(obj: Mapping[str, Any] | None) -> list[ManagerEntry]:
    entries = []
    raw_entries = meta.metadata(obj or {}).get("managedFields")
    for raw in raw_entries if isinstance(raw_entries, list) else []:
        if not isinstance(raw, dict) or not raw.get("manager"):
            continue
        fields = fieldsets.decode(raw.get("fieldsV1"))
        entries.append(ManagerEntry(raw["manager"], raw.get("operation") or "Update",
                                    raw.get("apiVersion") or "", fields,
                                    raw.get("time") or "", raw.get("subresource") or "",
                                    raw, frozenset(fields)))
    return entries


def write_managed_fields(obj: Obj, entries: list[ManagerEntry]) -> None:
    md = meta.ensure_metadata(obj)
    kept = [e.to_dict() for e in entries if e.fields]
    if kept:
        md["managedFields"] = kept
    else:
        md.pop("managedFields", None)


def _entry(entries: list[ManagerEntry], manager: str, operation: str, api_version: str,
           subresource: str) -> ManagerEntry:
    for e in entries:
        if e.identity == (manager, operation, subresource):
            e.api_version = api_version
            return e
    entry = ManagerEntry(manager, operation, api_version, set(), "", subresource)
    entries.append(entry)
    return entry


def _root(info: ResourceInfo) -> Mapping[str, Any] | None:
    return schema.definition_for(info)


# --- ordinary writes -------------------------------------------------------------------


def record_update(info: ResourceInfo, old: Obj | None, new: Obj, manager: str,
                  subresource: str | None = None, operation: str = "Update") -> Obj:
    """Update ``new``'s managedFields for a create (``old`` None) or update by ``manager``.

    Returns ``new`` (modified in place). ``operation`` is always Update for these writes;
    apply requests go through ``server_side_apply``. When ``new`` already carries
    managedFields that differ from ``old``'s, they are kept as they are: either the write
    was an apply that recorded them itself, or the client set them on purpose (as upstream
    lets clients reset managedFields).
    """
    if operation != "Update":
        raise ValueError(f"record_update records Update operations, not {operation!r}")
    incoming = meta.metadata(new).get("managedFields")
    existing = meta.metadata(old or {}).get("managedFields")
    if incoming and incoming != existing:
        return new
    root = _root(info)
    sub = subresource or ""
    entries = read_managed_fields(old) if old is not None else []
    if old is None:
        changed = fieldsets.field_set(root, new, subresource)
        removed: FieldSet = set()
    else:
        changed, removed = fieldsets.changes(root, old, new, subresource)
    # Changes to fields this manager owns by apply came from that apply (an apply request
    # runs through the same write path); they stay with the Apply entry.
    applied_by_me = set().union(*(e.fields for e in entries
                                  if e.manager == manager and e.operation == "Apply"))
    changed -= applied_by_me
    mine = None
    if changed:
        mine = _entry(entries, manager, "Update", info.api_version, sub)
        mine.time = meta.now()
    for entry in entries:
        if entry is mine:
            entry.fields = (entry.fields | changed) - removed
        else:
            entry.fields = entry.fields - changed - removed
    write_managed_fields(new, entries)
    return new


def _is_leaf(path: FieldPath, paths: FieldSet) -> bool:
    """True when no other member lies below ``path`` (only leaves carry values)."""
    n = len(path)
    return not any(len(p) > n and p[:n] == path for p in paths)


# --- apply ---------------------------------------------------------------------------


def _merge(live: Any, applied: Any, node: Mapping[str, Any] | None) -> Any:
    """Applied values win; maps and associative lists merge; atomic values replace."""
    if isinstance(applied, dict) and isinstance(live, dict):
        out = dict(live)
        for key, value in applied.items():
            child = fieldsets.child_schema(node, key)
            out[key] = _merge(live[key], value, child) if key in live else json_copy(value)
        return out
    if isinstance(applied, list) and isinstance(live, list):
        mode, keys = fieldsets.list_mode(node)
        if mode == "set":
            out_list = list(live)
            for item in applied:
                if item not in out_list:
                    out_list.append(json_copy(item))
            return out_list
        if mode == "map":
            applied_keys = [fieldsets.item_key(i, keys) for i in applied]
            live_keys = [fieldsets.item_key(i, keys) for i in live]
            if None in applied_keys or None in live_keys:
                return json_copy(applied)
            by_key = dict(zip(applied_keys, applied))
            sub = fieldsets.items_schema(node)
            merged = [_merge(item, by_key[k], sub) if k in by_key else item
                      for item, k in zip(live, live_keys)]
            merged += [json_copy(i) for k, i in zip(applied_keys, applied)
                       if k not in live_keys]
            return merged
    return json_copy(applied)


def _remove_dropped(obj: Obj, dropped: FieldSet, others: FieldSet, kept: FieldSet) -> None:
    """Remove the fields an applier stopped sending that nobody else owns.

    Shallowest first: an item that goes takes its children with it. A map or list left
    empty by the removal goes too, unless someone owns it.
    """
    removed: list[FieldPath] = []
    for path in sorted(dropped, key=len):
        if any(path[:len(r)] == r for r in removed):
            continue
        if any(o[:len(path)] == path for o in others):
            continue
        fieldsets.remove_path(obj, path)
        removed.append(path)
        parent = path[:-1]
        while parent and parent not in others and parent not in kept and \
                fieldsets.value_at(obj, parent) in ({}, []):
            fieldsets.remove_path(obj, parent)
            parent = parent[:-1]


def _conflict_error(conflicts: list[tuple[ManagerEntry, FieldPath]]) -> errors.ApiError:
    count = len(conflicts)
    if count == 1:
        entry, path = conflicts[0]
        text = f"conflict with {entry.describe()}: {fieldsets.path_string(path)}"
    else:
        lines: list[str] = []
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.describe(), []).append(fieldsets.path_string(path))
        for who in sorted(by_manager):
            lines.append(f"conflicts with {who}:")
            lines += [f"- {p}" for p in sorted(by_manager[who])]
        text = "\n".join(lines)
    message = f"Apply failed with {count} conflict{'s' if count != 1 else ''}: {text}"
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}",
               "field": fieldsets.path_string(p)} for e, p in conflicts]
    return errors.ApiError(409, "Conflict", message, {"causes": causes})


def _check_applied(info: ResourceInfo, applied: Any) -> Obj:
    if not isinstance(applied, dict):
        raise errors.bad_request("error decoding YAML: the applied configuration must be an "
                                 "object")
    if applied.get("apiVersion") not in (None, info.api_version) or \
            applied.get("kind") not in (None, info.kind):
        raise errors.bad_request(
            f"the API version in the data ({applied.get('apiVersion')}) does not match the "
            f"expected API version ({info.api_version})")
    problem = decoding.decode_error(info, applied)
    if problem is not None:
        raise problem
    return applied


def server_side_apply(info: ResourceInfo, live: Obj | None, applied: Any, manager: str,
                      force: bool = False, subresource: str | None = None) -> Obj:
    """The object after ``manager`` applies ``applied`` to ``live`` (None: create).

    Raises ApiError 409 Conflict (with FieldManagerConflict causes) when the applied
    configuration changes fields another manager owns and ``force`` is false.
    """
    if not manager:
        raise errors.bad_request("PATCH request must specify a field manager when using "
                                 "server-side apply")
    applied = _check_applied(info, applied)
    root = _root(info)
    sub = subresource or ""
    applied_set = fieldsets.field_set(root, applied, subresource)
    base: Obj = json_copy(live) if live is not None else {}
    entries = read_managed_fields(live)
    mine = _entry(entries, manager, "Apply", info.api_version, sub)
    previous = set(mine.fields)

    conflicts: list[tuple[ManagerEntry, FieldPath]] = []
    for entry in entries:
        if entry is mine:
            continue
        for path in sorted(entry.fields & applied_set):
            if not _is_leaf(path, applied_set):
                continue
            if fieldsets.value_at(base, path) != fieldsets.value_at(applied, path):
                conflicts.append((entry, path))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    for entry, path in conflicts:
        entry.fields.discard(path)

    trimmed = {k: v for k, v in applied.items() if k not in ("apiVersion", "kind")}
    merged = _merge(base, trimmed, root)
    merged["apiVersion"] = info.api_version
    merged["kind"] = info.kind
    md = meta.ensure_metadata(merged)
    applied_md = meta.metadata(applied)
    for key in ("name", "namespace"):
        if not md.get(key) and applied_md.get(key):
            md[key] = applied_md[key]

    others: FieldSet = set()
    for entry in entries:
        if entry is not mine:
            others |= entry.fields
    _remove_dropped(merged, previous - applied_set, others, applied_set)

    if mine.fields != applied_set or not mine.time:
        mine.time = meta.now()  # a no-op apply leaves the object, and its time, unchanged
    mine.fields = applied_set
    write_managed_fields(merged, entries)
    return merged


def apply(info: ResourceInfo, live: Obj | None, applied: Any, manager: str,
          force: bool = False, subresource: str | None = None) -> Obj:
    """Alias of ``server_side_apply`` (the name the API server's seam uses)."""
    return server_side_apply(info, live, applied, manager, force=force, subresource=subresource)
