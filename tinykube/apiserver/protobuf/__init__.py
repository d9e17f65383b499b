"""Decoding ``application/vnd.kubernetes.protobuf`` request bodies into JSON objects.

A body is ``k8s\\x00`` followed by a ``runtime.Unknown`` (typeMeta, raw): ``raw`` is the
typed object in protobuf. Decoding walks the wire format with upstream's field numbers
(``fields.json.gz``, see ``extract.py``) and renders the few types whose JSON form differs
from their messages (Time, Quantity, IntOrString, RawExtension, FieldsV1, bytes) as the
JSON encoding does, so the rest of the server only ever sees JSON-shaped dicts.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import os
import struct
from datetime import datetime, timezone
from typing import Any

import orjson

MAGIC = b"k8s\x00"
_FIELDS_FILE = os.path.join(os.path.dirname(__file__), "fields.json.gz")
_META = ".k8s.io.apimachinery.pkg.apis.meta.v1."

# descriptor_pb2.FieldDescriptorProto types
T_DOUBLE, T_FLOAT, T_INT64, T_UINT64, T_INT32, T_FIXED64, T_FIXED32, T_BOOL, T_STRING = range(1, 10)
T_MESSAGE, T_BYTES, T_UINT32, T_ENUM, T_SFIXED32, T_SFIXED64, T_SINT32, T_SINT64 = range(11, 19)
LABEL_REPEATED = 3
INLINE = ""  # json_names' mark for a Go struct embedded with `json:",inline"`


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf object tinykube can decode."""


@functools.cache
def _table() -> dict[str, dict]:
    with gzip.open(_FIELDS_FILE, "rt") as f:
        return json.load(f)


def message_name(api_version: str, kind: str) -> str:
    """``apps/v1`` + ``Deployment`` -> ``.k8s.io.api.apps.v1.Deployment``."""
    group, _, version = api_version.rpartition("/")
    if kind in ("DeleteOptions", "Status", "ListOptions", "GetOptions", "PatchOptions",
                "CreateOptions", "UpdateOptions") and group in ("", "meta.k8s.io"):
        return f"{_META}{kind}"
    package = group.split(".")[0] if group else "core"
    return f".k8s.io.api.{package}.{version}.{kind}"


def decode(body: bytes) -> dict[str, Any]:
    """The JSON-shaped object of a protobuf request body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("protobuf body does not start with the k8s magic number")
    unknown = _fields(memoryview(body)[len(MAGIC):])
    type_meta = _fields(unknown.get(1, [(2, b"")])[-1][1])
    api_version = bytes(type_meta.get(1, [(2, b"")])[-1][1]).decode()
    kind = bytes(type_meta.get(2, [(2, b"")])[-1][1]).decode()
    raw = unknown.get(2, [(2, b"")])[-1][1]
    name = message_name(api_version, kind)
    if name not in _table():
        raise ProtobufError(f"no protobuf schema for {api_version}, Kind={kind}")
    obj = _message(name, raw)
    out: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    out.update(obj)
    return out


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(data: memoryview | bytes) -> dict[int, list[Any]]:
    """field number -> raw values in order (ints for varints/fixed, memoryviews for bytes)."""
    view = memoryview(data)
    out: dict[int, list[Any]] = {}
    pos = 0
    while pos < len(view):
        key, pos = _varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(view, pos)
        elif wire == 1:
            value, pos = bytes(view[pos:pos + 8]), pos + 8
        elif wire == 2:
            length, pos = _varint(view, pos)
            if pos + length > len(view):
                raise ProtobufError("truncated length-delimited field")
            value, pos = view[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = bytes(view[pos:pos + 4]), pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append((wire, value))
    return out


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _scalar(ftype: int, wire: int, value: Any) -> Any:
    if ftype in (T_INT64, T_INT32, T_ENUM):
        return _signed(value, 64)
    if ftype in (T_UINT64, T_UINT32):
        return value
    if ftype == T_BOOL:
        return bool(value)
    if ftype in (T_SINT32, T_SINT64):
        return (value >> 1) ^ -(value & 1)
    if ftype == T_DOUBLE:
        return struct.unpack("<d", value)[0]
    if ftype == T_FLOAT:
        return struct.unpack("<f", value)[0]
    if ftype in (T_FIXED64, T_SFIXED64):
        return struct.unpack("<q" if ftype == T_SFIXED64 else "<Q", value)[0]
    if ftype in (T_FIXED32, T_SFIXED32):
        return struct.unpack("<i" if ftype == T_SFIXED32 else "<I", value)[0]
    if ftype == T_STRING:
        return bytes(value).decode("utf-8")
    if ftype == T_BYTES:
        return base64.b64encode(bytes(value)).decode()
    raise ProtobufError(f"unsupported field type {ftype}")


def _packed(ftype: int, data: memoryview) -> list[Any]:
    out: list[Any] = []
    pos = 0
    size = {T_DOUBLE: 8, T_FIXED64: 8, T_SFIXED64: 8, T_FLOAT: 4, T_FIXED32: 4,
            T_SFIXED32: 4}.get(ftype)
    while pos < len(data):
        if size:
            out.append(_scalar(ftype, 1, bytes(data[pos:pos + size])))
            pos += size
        else:
            value, pos = _varint(data, pos)
            out.append(_scalar(ftype, 0, value))
    return out


def _special(name: str, data: memoryview) -> tuple[bool, Any]:
    """Types whose JSON encoding is not their message shape."""
    if name in (f"{_META}Time", f"{_META}MicroTime"):
        f = _fields(data)
        seconds = _signed(f.get(1, [(0, 0)])[-1][1], 64)
        nanos = f.get(2, [(0, 0)])[-1][1]
        when = datetime.fromtimestamp(seconds, timezone.utc)
        if name.endswith("MicroTime"):
            return True, when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
        return True, when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == f"{_META}Duration":
        f = _fields(data)
        return True, f"{_signed(f.get(1, [(0, 0)])[-1][1], 64) / 1e9:g}s"
    if name == ".k8s.io.apimachinery.pkg.api.resource.Quantity":
        f = _fields(data)
        return True, bytes(f.get(1, [(2, b"")])[-1][1]).decode()
    if name == ".k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        f = _fields(data)
        if f.get(1, [(0, 0)])[-1][1] == 1:
            return True, bytes(f.get(3, [(2, b"")])[-1][1]).decode()
        return True, _signed(f.get(2, [(0, 0)])[-1][1], 64)
    if name in (".k8s.io.apimachinery.pkg.runtime.RawExtension", f"{_META}FieldsV1"):
        raw = bytes(_fields(data).get(1, [(2, b"")])[-1][1])
        if not raw:
            return True, {}
        try:
            return True, orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProtobufError(f"{name} holds non-JSON data") from None
    if name.endswith(".ExtraValue"):
        return True, [bytes(v).decode() for _, v in _fields(data).get(1, [])]
    return False, None


def _message(name: str, data: memoryview | bytes) -> Any:
    view = memoryview(data)
    handled, value = _special(name, view)
    if handled:
        return value
    spec = _table().get(name)
    if spec is None:
        raise ProtobufError(f"unknown protobuf message {name}")
    fields = spec["fields"]
    names = json_names(name)
    out: dict[str, Any] = {}
    for number, values in _fields(view).items():
        field = fields.get(str(number))
        if field is None:
            continue  # a newer client's field: upstream ignores it as well
        _, ftype, label, type_name = field
        fname = names[str(number)]
        if ftype == T_MESSAGE:
            entry = _table().get(type_name)
            if entry is not None and entry["map"]:
                out[fname] = _map(type_name, values)
                continue
            decoded = [_message(type_name, v) for _, v in values]
        elif label == LABEL_REPEATED and ftype not in (T_STRING, T_BYTES):
            decoded = []
            for wire, v in values:
                decoded.extend(_packed(ftype, v) if wire == 2 else [_scalar(ftype, wire, v)])
        else:
            decoded = [_scalar(ftype, wire, v) for wire, v in values]
        if label == LABEL_REPEATED:
            out[fname] = decoded
        elif fname == INLINE:
            out.update(decoded[-1])
        elif not _is_go_zero(ftype, type_name, decoded[-1]):
            out[fname] = decoded[-1]
    return out


@functools.cache
def json_names(name: str) -> dict[str, str]:
    """Field number -> JSON name of a message's fields. The wire names are Go's protobuf
    tags, which mostly are the JSON names but not always: an embedded struct
    (``json:",inline"``: a Volume's source, a probe's handler, a ConfigMapKeySelector's
    name) is ``INLINE``, and a few differ in case (``Webhooks``, ``uID``). Upstream's
    schema of the type tells; a type without one keeps the wire names."""
    from tinykube.api import schema

    fields = _table()[name]["fields"]
    properties = _properties(schema.definitions(), name)
    if properties is None:
        return {number: f[0] for number, f in fields.items()}
    lowered = {p.lower(): p for p in properties}
    out = {}
    for number, (wire_name, ftype, _, type_name) in fields.items():
        if wire_name in properties:
            out[number] = wire_name
        elif wire_name.lower() in lowered:
            out[number] = lowered[wire_name.lower()]
        elif ftype == T_MESSAGE and (_properties(schema.definitions(), type_name) or {}).keys() <= properties.keys():
            out[number] = INLINE  # its own schema, if it has one, holds only fields of this one
        else:
            out[number] = wire_name
    return out


def _properties(definitions: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The JSON properties of a message's type (``.k8s.io.api.core.v1.Pod`` is the schema's
    ``io.k8s.api.core.v1.Pod``), None without a schema."""
    definition = definitions.get("io.k8s." + name.removeprefix(".k8s.io."))
    return (definition or {}).get("properties") or None


def _is_go_zero(ftype: int, type_name: str, value: Any) -> bool:
    """Go always marshals non-pointer fields, so an empty string or a zero Time on the
    wire is the field's zero value, which the JSON encoding would have omitted."""
    if ftype == T_STRING:
        return value == ""
    if ftype == T_MESSAGE and type_name in (f"{_META}Time", f"{_META}MicroTime"):
        return value.startswith("1970-01-01T00:00:00")
    return False


def _map(entry_name: str, values: list) -> dict[str, Any]:
    entry = _table()[entry_name]["fields"]
    key_field, value_field = entry.get("1"), entry.get("2")
    out: dict[str, Any] = {}
    for _, raw in values:
        f = _fields(raw)
        key = _scalar(key_field[1], *f[1][-1]) if 1 in f else ""
        if value_field is None:
            continue
        _, vtype, _, vtype_name = value_field
        if 2 not in f:
            out[key] = "" if vtype == T_STRING else None
        elif vtype == T_MESSAGE:
            out[key] = _message(vtype_name, f[2][-1][1])
        else:
            out[key] = _scalar(vtype, *f[2][-1])
    return out
