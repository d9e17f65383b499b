"""``/openapi/v2`` and ``/openapi/v3``: the schemas kubectl validates, diffs and explains with.

The documents come from ``tinykube.api.schema`` (upstream's v1.32 schemas). kubectl asks
for OpenAPI v2 in gnostic's protobuf form (``application/com.github.proto-openapi.spec.
v2@v1.0+protobuf``) and cannot read JSON there, so this module also encodes the v2
document into that protobuf message (``openapi.v2.Document``), by hand, from the JSON
document: the wire format is small (varints, length-delimited fields, doubles) and the
field numbers below are gnostic's OpenAPIv2.proto. Vendor extensions, defaults, enums
and examples travel as ``Any{yaml}``; JSON text is valid YAML, so they are JSON.

OpenAPI v3 is served as upstream: ``/openapi/v3`` lists one document per group-version
with a ``?hash=`` URL; a request with the current hash is immutable and cacheable, an old
hash is redirected. Every document is serialized once, on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from functools import cached_property
from typing import Any, Callable

import orjson
from aiohttp import web

from tinykube.api import kinds
from tinykube.apiserver.discovery import Document

# Clients ask with the historical "@v1.0" spelling; the answer carries ".v1.0" because
# Go's mime parser (which client-go runs on Content-Type) rejects "@".
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTOBUF_V2_ALIASES = (PROTOBUF_V2, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
PROTOBUF_V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# -- protobuf wire format -----------------------------------------------------------------


def varint(value: int) -> bytes:
    """A protobuf base-128 varint (negative values as 64-bit two's complement, as int64)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + varint(len(payload)) + payload


# A message spec maps a JSON key to (field number, encoder). Encoders turn a JSON value
# into the bytes of one or more fields with that number.
Encoder = Callable[[int, Any], bytes]
Spec = dict[str, tuple[int, Encoder]]


def _string(number: int, value: Any) -> bytes:
    if not isinstance(value, str) or value == "":
        return b""
    return _length_delimited(number, value.encode())


def _strings(number: int, value: Any) -> bytes:
    if isinstance(value, str):
        value = [value]
    return b"".join(_length_delimited(number, str(v).encode()) for v in value or ())


def _bool(number: int, value: Any) -> bytes:
    return _tag(number, 0) + b"\x01" if value is True else b""


def _int64(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
        return b""
    return _tag(number, 0) + varint(int(value))


def _double(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
        return b""
    return _tag(number, 1) + struct.pack("<d", float(value))


def _any(value: Any) -> bytes:
    """An ``openapi.v2.Any``: the value as YAML text (field 2)."""
    return _length_delimited(2, orjson.dumps(value))


def _any_field(number: int, value: Any) -> bytes:
    return _length_delimited(number, _any(value))


def _anys(number: int, values: Any) -> bytes:
    return b"".join(_any_field(number, v) for v in values or ())


def _message(spec_name: str) -> Encoder:
    """Encode a JSON object as the message ``spec_name`` (resolved lazily: specs recurse)."""

    def encode(number: int, value: Any) -> bytes:
        if not isinstance(value, dict):
            return b""
        return _length_delimited(number, encode_message(spec_name, value))

    return encode


def _repeated(spec_name: str) -> Encoder:
    inner = _message(spec_name)

    def encode(number: int, values: Any) -> bytes:
        return b"".join(inner(number, v) for v in values or ())

    return encode


def _named(value_encoder: Encoder) -> Encoder:
    """A JSON map as repeated ``Named*{name = 1, value = 2}`` entries, in document order."""

    def encode(number: int, mapping: Any) -> bytes:
        if not isinstance(mapping, dict):
            return b""
        return b"".join(
            _length_delimited(number, _string(1, k) + value_encoder(2, v))
            for k, v in mapping.items()
        )

    return encode


def _wrapped_named(value_encoder: Encoder) -> Encoder:
    """A message whose field 1 is a repeated Named* list (Definitions, Properties, ...)."""
    named = _named(value_encoder)

    def encode(number: int, mapping: Any) -> bytes:
        if not isinstance(mapping, dict):
            return b""
        return _length_delimited(number, named(1, mapping))

    return encode


def _vendor_extensions(number: int, obj: dict) -> bytes:
    return b"".join(
        _length_delimited(number, _string(1, k) + _any_field(2, v))
        for k, v in obj.items() if k.startswith("x-")
    )


def _schema_type(number: int, value: Any) -> bytes:
    return _length_delimited(number, _strings(1, value)) if value else b""


def _schema_items(number: int, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]
    return _length_delimited(number, b"".join(_message("Schema")(1, i) for i in items))


def _additional_properties(number: int, value: Any) -> bytes:
    if isinstance(value, bool):
        return _length_delimited(number, _tag(2, 0) + (b"\x01" if value else b"\x00"))
    return _length_delimited(number, _message("Schema")(1, value))


def _parameters_item(number: int, param: Any) -> bytes:
    """``ParametersItem``: a $ref, a body parameter, or a non-body one by its ``in``."""
    if not isinstance(param, dict):
        return b""
    if "$ref" in param:
        return _length_delimited(number, _length_delimited(
            2, _string(1, param["$ref"]) + _string(2, param.get("description"))))
    return _length_delimited(number, _length_delimited(1, encode_parameter(param)))


def encode_parameter(param: dict) -> bytes:
    """``Parameter``: oneof body_parameter = 1, non_body_parameter = 2."""
    where = param.get("in")
    if where == "body":
        return _length_delimited(1, encode_message("BodyParameter", param))
    slot, spec = {"header": (1, "HeaderParameterSubSchema"),
                  "formData": (2, "FormDataParameterSubSchema"),
                  "query": (3, "QueryParameterSubSchema"),
                  "path": (4, "PathParameterSubSchema")}.get(where, (3, "QueryParameterSubSchema"))
    return _length_delimited(2, _length_delimited(slot, encode_message(spec, param)))


def _responses(number: int, value: Any) -> bytes:
    if not isinstance(value, dict):
        return b""
    codes = b""
    for code, response in value.items():
        if code.startswith("x-"):
            continue
        if isinstance(response, dict) and "$ref" in response:
            inner = _length_delimited(2, _string(1, response["$ref"]))
        else:
            inner = _length_delimited(1, encode_message("Response", response or {}))
        codes += _length_delimited(1, _string(1, code) + _length_delimited(2, inner))
    return _length_delimited(number, codes + _vendor_extensions(2, value))


def _schema_item(number: int, value: Any) -> bytes:
    """``SchemaItem``: oneof schema = 1 (file schemas are not used by Kubernetes)."""
    return _length_delimited(number, _message("Schema")(1, value)) if value else b""


def _paths(number: int, value: Any) -> bytes:
    if not isinstance(value, dict):
        return b""
    paths = {k: v for k, v in value.items() if not k.startswith("x-")}
    return _length_delimited(number, _vendor_extensions(1, value)
                             + _named(_message("PathItem"))(2, paths))


def _security_definitions(number: int, value: Any) -> bytes:
    """Only apiKey schemes (Kubernetes' BearerToken) are encoded."""
    if not isinstance(value, dict):
        return b""
    entries = b""
    for name, scheme in value.items():
        if isinstance(scheme, dict) and scheme.get("type") == "apiKey":
            item = _length_delimited(2, encode_message("ApiKeySecurity", scheme))
            entries += _length_delimited(1, _string(1, name) + _length_delimited(2, item))
    return _length_delimited(number, entries) if entries else b""


def _security(number: int, value: Any) -> bytes:
    out = b""
    for requirement in value or ():
        entries = b"".join(
            _length_delimited(1, _string(1, k) + _length_delimited(2, _strings(1, v)))
            for k, v in requirement.items())
        out += _length_delimited(number, entries)
    return out


_PRIMITIVE_CONSTRAINTS: dict[str, Encoder] = {
    "maximum": _double, "exclusiveMaximum": _bool, "minimum": _double,
    "exclusiveMinimum": _bool, "maxLength": _int64, "minLength": _int64, "pattern": _string,
    "maxItems": _int64, "minItems": _int64, "uniqueItems": _bool, "enum": _anys,
    "multipleOf": _double,
}


def _sub_schema(with_allow_empty: bool) -> Spec:
    """Field numbers of the non-body parameter messages, which share one layout."""
    spec: Spec = {"required": (1, _bool), "in": (2, _string), "description": (3, _string),
                  "name": (4, _string)}
    n = 5
    if with_allow_empty:
        spec["allowEmptyValue"] = (5, _bool)
        n = 6
    for key, enc in (("type", _string), ("format", _string),
                     ("items", _message("PrimitivesItems")), ("collectionFormat", _string),
                     ("default", _any_field)):
        spec[key] = (n, enc)
        n += 1
    for key, enc in _PRIMITIVE_CONSTRAINTS.items():
        spec[key] = (n, enc)
        n += 1
    spec["x-"] = (n, _vendor_extensions)
    return spec


SPECS: dict[str, Spec] = {
    "Document": {
        "swagger": (1, _string), "info": (2, _message("Info")), "host": (3, _string),
        "basePath": (4, _string), "schemes": (5, _strings), "consumes": (6, _strings),
        "produces": (7, _strings), "paths": (8, _paths),
        "definitions": (9, _wrapped_named(_message("Schema"))),
        "parameters": (10, _wrapped_named(
            lambda n, p: _length_delimited(n, encode_parameter(p)))),
        "security": (12, _security), "securityDefinitions": (13, _security_definitions),
        "x-": (16, _vendor_extensions),
    },
    "Info": {"title": (1, _string), "version": (2, _string), "description": (3, _string),
             "termsOfService": (4, _string), "x-": (7, _vendor_extensions)},
    "PathItem": {
        "$ref": (1, _string), "get": (2, _message("Operation")),
        "put": (3, _message("Operation")), "post": (4, _message("Operation")),
        "delete": (5, _message("Operation")), "options": (6, _message("Operation")),
        "head": (7, _message("Operation")), "patch": (8, _message("Operation")),
        "parameters": (9, lambda n, ps: b"".join(_parameters_item(n, p) for p in ps or ())),
        "x-": (10, _vendor_extensions),
    },
    "Operation": {
        "tags": (1, _strings), "summary": (2, _string), "description": (3, _string),
        "operationId": (5, _string), "produces": (6, _strings), "consumes": (7, _strings),
        "parameters": (8, lambda n, ps: b"".join(_parameters_item(n, p) for p in ps or ())),
        "responses": (9, _responses), "schemes": (10, _strings), "deprecated": (11, _bool),
        "security": (12, _security), "x-": (13, _vendor_extensions),
    },
    "BodyParameter": {"description": (1, _string), "name": (2, _string), "in": (3, _string),
                      "required": (4, _bool), "schema": (5, _message("Schema")),
                      "x-": (6, _vendor_extensions)},
    "HeaderParameterSubSchema": _sub_schema(with_allow_empty=False),
    "PathParameterSubSchema": _sub_schema(with_allow_empty=False),
    "QueryParameterSubSchema": _sub_schema(with_allow_empty=True),
    "FormDataParameterSubSchema": _sub_schema(with_allow_empty=True),
    "PrimitivesItems": {
        "type": (1, _string), "format": (2, _string), "items": (3, _message("PrimitivesItems")),
        "collectionFormat": (4, _string), "default": (5, _any_field),
        **{k: (6 + i, enc) for i, (k, enc) in enumerate(_PRIMITIVE_CONSTRAINTS.items())},
        "x-": (18, _vendor_extensions),
    },
    "Response": {"description": (1, _string), "schema": (2, _schema_item),
                 "x-": (5, _vendor_extensions)},
    "Schema": {
        "$ref": (1, _string), "format": (2, _string), "title": (3, _string),
        "description": (4, _string), "default": (5, _any_field), "multipleOf": (6, _double),
        "maximum": (7, _double), "exclusiveMaximum": (8, _bool), "minimum": (9, _double),
        "exclusiveMinimum": (10, _bool), "maxLength": (11, _int64), "minLength": (12, _int64),
        "pattern": (13, _string), "maxItems": (14, _int64), "minItems": (15, _int64),
        "uniqueItems": (16, _bool), "maxProperties": (17, _int64),
        "minProperties": (18, _int64), "required": (19, _strings), "enum": (20, _anys),
        "additionalProperties": (21, _additional_properties), "type": (22, _schema_type),
        "items": (23, _schema_items), "allOf": (24, _repeated("Schema")),
        "properties": (25, _wrapped_named(_message("Schema"))),
        "discriminator": (26, _string), "readOnly": (27, _bool), "example": (30, _any_field),
        "x-": (31, _vendor_extensions),
    },
    "ApiKeySecurity": {"type": (1, _string), "name": (2, _string), "in": (3, _string),
                       "description": (4, _string), "x-": (5, _vendor_extensions)},
}


def encode_message(spec_name: str, obj: dict) -> bytes:
    """Fields in field-number order, as protobuf encoders write them."""
    spec = SPECS[spec_name]
    fields: list[tuple[int, bytes]] = []
    for key, value in obj.items():
        if key.startswith("x-") or key not in spec:
            continue
        number, encoder = spec[key]
        fields.append((number, encoder(number, value)))
    if "x-" in spec:
        number, encoder = spec["x-"]
        fields.append((number, encoder(number, obj)))
    fields.sort(key=lambda f: f[0])
    return b"".join(data for _, data in fields)


def encode_v2_document(doc: dict) -> bytes:
    """The gnostic ``openapi.v2.Document`` protobuf of a Swagger 2.0 JSON document."""
    return encode_message("Document", doc)


# -- paths ---------------------------------------------------------------------------------
#
# The schema module ships definitions only. kubectl also reads the operations: before
# ``apply``/``create`` it looks for a PATCH operation of the object's kind (by
# ``x-kubernetes-group-version-kind``) with a ``fieldValidation`` query parameter, and only
# then leaves validation to the server (strict decoding errors) instead of validating
# client-side. So the documents carry upstream-shaped paths for every served resource.

_WRITE_PARAMS = (
    ("dryRun", "When present, indicates that modifications should not be persisted."),
    ("fieldManager", "fieldManager is a name associated with the actor or entity that is "
                     "making these changes."),
    ("fieldValidation", "fieldValidation instructs the server on how to handle objects in "
                        "the request containing unknown or duplicate fields. Valid values "
                        "are: Ignore, Warn, Strict."),
)
_ACTIONS = {  # (path kind, method) -> (x-kubernetes-action, operationId verb)
    ("collection", "get"): ("list", "list"),
    ("collection", "post"): ("post", "create"),
    ("collection", "delete"): ("deletecollection", "deleteCollection"),
    ("item", "get"): ("get", "read"),
    ("item", "put"): ("put", "replace"),
    ("item", "patch"): ("patch", "patch"),
    ("item", "delete"): ("delete", "delete"),
}
# x-kubernetes-action -> the API verb that must be served for the operation to exist
_ACTION_VERBS = {"list": "list", "post": "create", "deletecollection": "deletecollection",
                 "get": "get", "put": "update", "patch": "patch", "delete": "delete"}
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def _operation_id(verb: str, info: Any) -> str:
    group = "".join(p.capitalize() for p in (info.group.split(".")[0] if info.group
                                             else "core").split("-"))
    scope = "Namespaced" if info.namespaced else ""
    return f"{verb}{group}{info.version.capitalize()}{scope}{info.kind}"


def _string_param(param: dict, v3: bool) -> dict:
    """A string parameter: OpenAPI v3 types it under ``schema``, v2 inline."""
    string = {"type": "string", "uniqueItems": True}
    return {**param, "schema": string} if v3 else {**param, **string}


def _query_param(name: str, description: str, v3: bool) -> dict:
    return _string_param({"name": name, "in": "query", "description": description}, v3)


def _path_param(name: str, v3: bool) -> dict:
    return _string_param({"name": name, "in": "path", "required": True}, v3)


def _ref(definition: str, v3: bool) -> dict:
    return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + definition}


def _operation(info: Any, path_kind: str, method: str, definition: str, list_definition: str,
               v3: bool) -> dict:
    action, verb = _ACTIONS[(path_kind, method)]
    op: dict[str, Any] = {
        "description": f"{verb} {info.kind}",
        "operationId": _operation_id(verb, info),
        "tags": [info.group.replace(".", "") + "_" + info.version if info.group
                 else "core_" + info.version],
    }
    params: list[dict] = []
    if method in ("post", "put", "patch"):
        params += [_query_param(n, d, v3) for n, d in _WRITE_PARAMS]
    if method == "patch":
        params.append(_query_param("force", "Force is going to \"force\" Apply requests.", v3))
    body_ref = _ref(definition, v3)
    response_ref = _ref(list_definition if action == "list" else definition, v3)
    if method in ("post", "put", "patch"):
        if v3:
            types = _PATCH_TYPES if method == "patch" else ("*/*",)
            op["requestBody"] = {"content": {t: {"schema": {"type": "object"} if method ==
                                                 "patch" else body_ref} for t in types},
                                 "required": True}
        else:
            params.insert(0, {"name": "body", "in": "body", "required": True,
                              "schema": {"type": "object"} if method == "patch" else body_ref})
            op["consumes"] = list(_PATCH_TYPES) if method == "patch" else ["*/*"]
    if v3:
        op["responses"] = {"200": {"description": "OK", "content": {
            "application/json": {"schema": response_ref}}}}
    else:
        op["produces"] = ["application/json", "application/yaml"]
        op["responses"] = {"200": {"description": "OK", "schema": response_ref}}
    if params:
        op["parameters"] = params
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = {"group": info.group, "kind": info.kind,
                                             "version": info.version}
    return op


def resource_paths(resources: Any, definition_name: Callable[[str, str, str], str | None],
                   v3: bool) -> dict[str, dict]:
    """Collection and item paths with their operations, for each stored resource."""
    paths: dict[str, dict] = {}
    for info in resources:
        definition = definition_name(info.group, info.version, info.kind)
        list_definition = definition_name(info.group, info.version, info.list_kind)
        if definition is None or "create" not in info.verbs:
            continue
        base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
        if info.namespaced:
            base += "/namespaces/{namespace}"
        scope_params = [_path_param("namespace", v3)] if info.namespaced else []
        for path_kind, path, extra in (("collection", f"{base}/{info.resource}", []),
                                       ("item", f"{base}/{info.resource}/{{name}}",
                                        [_path_param("name", v3)])):
            item: dict[str, Any] = {}
            for (kind, method), (action, _) in _ACTIONS.items():
                if kind != path_kind or _ACTION_VERBS[action] not in info.verbs:
                    continue
                if action == "list" and list_definition is None:
                    continue
                item[method] = _operation(info, kind, method, definition,
                                          list_definition or definition, v3)
            item["parameters"] = scope_params + extra
            paths[path] = item
    return paths


# -- serving -----------------------------------------------------------------------------


def content_hash(body: bytes) -> str:
    """Upstream's document hash: sha512 hex, upper case."""
    return hashlib.sha512(body).hexdigest().upper()


def wants_protobuf(accept: str, mimes: tuple[str, ...] = PROTOBUF_V2_ALIASES) -> bool:
    """True when the client lists one of ``mimes`` before any JSON alternative."""
    for media_range in accept.split(","):
        media = media_range.split(";", 1)[0].strip().lower()
        if media in mimes:
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False


def v3_key(path: str) -> str:
    """``api/v1`` -> ``v1``; ``apis/apps/v1`` -> ``apps/v1`` (the schema module's key)."""
    return path[len("api/"):] if path.startswith("api/") else path[len("apis/"):]


class OpenAPIDocuments:
    """The serialized v2 and v3 documents, built lazily from ``tinykube.api.schema``."""

    def __init__(self, schema_module: Any | None = None):
        self._schema_module = schema_module
        self._v3: dict[str, tuple[bytes, str]] = {}

    @property
    def schema(self) -> Any:
        if self._schema_module is None:
            from tinykube.api import schema

            self._schema_module = schema
        return self._schema_module

    @cached_property
    def v2(self) -> dict:
        doc = dict(self.schema.openapi_v2())
        doc["paths"] = {**resource_paths(kinds.RESOURCES, self.schema.definition_name, False),
                        **(doc.get("paths") or {})}
        return doc

    @cached_property
    def v2_json(self) -> tuple[bytes, str]:
        body = orjson.dumps(self.v2)
        return body, content_hash(body)

    @cached_property
    def v2_protobuf(self) -> tuple[bytes, str]:
        body = encode_v2_document(self.v2)
        return body, content_hash(body)

    @cached_property
    def v3_paths(self) -> list[str]:
        """``api/v1``, ``apis/apps/v1``, ...: one document per served group-version."""
        return sorted(f"apis/{g}/{v}" if g else f"api/{v}"
                      for g, versions in kinds.group_versions().items() for v in versions)

    def v3(self, path: str) -> tuple[bytes, str] | None:
        if path not in self.v3_paths:
            return None
        if path not in self._v3:
            doc = dict(self.schema.openapi_v3(path))
            group, _, version = v3_key(path).rpartition("/")
            doc["paths"] = {**resource_paths(kinds.resources_in(group, version),
                                             self.schema.definition_name, True),
                            **(doc.get("paths") or {})}
            body = orjson.dumps(doc)
            self._v3[path] = (body, content_hash(body))
        return self._v3[path]

    def v3_index(self) -> dict:
        return {"paths": {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={self.v3(p)[1]}"}
                          for p in self.v3_paths}}


def _document(body: bytes, digest: str, content_type: str = "application/json",
              cache_control: str = "no-cache, private") -> Document:
    return Document(body, f'"{digest}"', content_type, cache_control)


def setup(app: web.Application, server: Any) -> None:
    """Register ``/openapi/v2``, ``/openapi/v3`` and ``/openapi/v3/<group-version>``."""
    docs = OpenAPIDocuments()

    # Building a document takes a good fraction of a second the first time: do it on a
    # worker thread so that the event loop keeps serving meanwhile.
    async def handle_v2(request: web.Request) -> web.Response:
        if wants_protobuf(request.headers.get("Accept", "")):
            body, digest = await asyncio.to_thread(lambda: docs.v2_protobuf)
            return _document(body, digest, PROTOBUF_V2_CONTENT_TYPE).respond(request)
        body, digest = await asyncio.to_thread(lambda: docs.v2_json)
        return _document(body, digest).respond(request)

    async def handle_v3_index(request: web.Request) -> web.Response:
        body = orjson.dumps(await asyncio.to_thread(docs.v3_index))
        return _document(body, content_hash(body)).respond(request)

    async def handle_v3(request: web.Request) -> web.Response:
        path = request.match_info["path"].strip("/")
        found = await asyncio.to_thread(docs.v3, path)
        if found is None:
            raise web.HTTPNotFound()  # the pipeline answers with a NotFound Status
        body, digest = found
        asked = request.query.get("hash")
        if asked is None:
            return _document(body, digest).respond(request)
        if asked != digest:
            return web.Response(status=301,
                                headers={"Location": f"/openapi/v3/{path}?hash={digest}"})
        resp = _document(body, digest, cache_control="public, immutable").respond(request)
        resp.headers["Expires"] = "Fri, 31 Dec 9999 00:00:00 GMT"
        return resp

    app.router.add_get("/openapi/v2", handle_v2)
    app.router.add_get("/openapi/v3", handle_v3_index)
    app.router.add_get("/openapi/v3/", handle_v3_index)
    app.router.add_get("/openapi/v3/{path:.+}", handle_v3)
