"""Request bodies: size limit, media type and decoding, with upstream's error texts."""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from aiohttp import web

from tinykube.api import errors
from tinykube.apiserver import protobuf

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
    "application/apply-patch+cbor": "apply",
}
PROTOBUF = "application/vnd.kubernetes.protobuf"
OBJECT_TYPES = (*JSON_TYPES, *YAML_TYPES, PROTOBUF)


def media_type(request: web.Request) -> str:
    return (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()


async def read_bytes(request: web.Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes with 413 before reading it all."""
    length = request.content_length
    if length is not None and length > limit:
        raise errors.request_entity_too_large(f"limit is {limit}")
    data = bytearray()
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise errors.request_entity_too_large(f"limit is {limit}")
    return bytes(data)


def parse_document(data: bytes, content_type: str) -> Any:
    """JSON or YAML into Python values; 400 with the parser's complaint on bad input."""
    if not data.strip():
        raise errors.bad_request("the body of the request was empty")
    if content_type == PROTOBUF:
        try:
            return protobuf.decode(data)
        except protobuf.ProtobufError as exc:
            raise errors.bad_request(f"failed to decode protobuf body: {exc}") from None
    if content_type in YAML_TYPES or content_type == "application/apply-patch+yaml":
        try:
            return yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"error converting YAML to JSON: {_one_line(exc)}") \
                from None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(
            f"couldn't get version/kind; json parse error: {_one_line(exc)}") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


async def read_object(request: web.Request, limit: int) -> dict:
    """A create/update body: a JSON or YAML object."""
    content_type = media_type(request) or "application/json"
    if content_type not in OBJECT_TYPES:
        raise errors.unsupported_media_type(content_type, OBJECT_TYPES)
    obj = parse_document(await read_bytes(request, limit), content_type)
    if not isinstance(obj, dict):
        raise errors.bad_request(
            "couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{_go_type(obj)} into Go value of type struct {{ APIVersion string "
            '"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }')
    if "metadata" in obj and obj["metadata"] is not None and not isinstance(obj["metadata"], dict):
        raise errors.bad_request("json: cannot unmarshal " + _go_type(obj["metadata"]) +
                                 ' into Go struct field Object.metadata of type v1.ObjectMeta')
    return obj


async def read_patch(request: web.Request, limit: int) -> tuple[str, Any]:
    """(patch type: json|merge|strategic|apply, the parsed patch document)."""
    content_type = media_type(request)
    patch_type = PATCH_TYPES.get(content_type)
    if patch_type is None:
        raise errors.unsupported_media_type(content_type, tuple(PATCH_TYPES))
    if content_type == "application/apply-patch+cbor":
        raise errors.unsupported_media_type(content_type, tuple(PATCH_TYPES))
    document = parse_document(await read_bytes(request, limit), content_type)
    if patch_type == "json" and not isinstance(document, list):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type "
                                 "jsonpatch.Patch")
    if patch_type != "json" and not isinstance(document, dict):
        raise errors.bad_request("json: cannot unmarshal " + _go_type(document) +
                                 " into Go value of type map[string]interface {}")
    return patch_type, document


def _go_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "object"
