"""Response encoding: content negotiation (JSON, YAML, Table, PartialObjectMetadata).

Objects reach this module either as dicts or as the watch cache's pre-serialized bytes;
plain JSON answers reuse the bytes, the other forms decode or convert as needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import orjson
import yaml
from aiohttp import web

from tinykube.api import errors
from tinykube.api.kinds import ResourceInfo

JSON = "application/json"
YAML = "application/yaml"
SUPPORTED = (JSON, YAML, "application/vnd.kubernetes.protobuf")


@dataclass(frozen=True)
class Format:
    """What the client asked for: a media type and, for JSON, an ``as=`` conversion."""

    media_type: str = JSON
    as_kind: str = ""  # "", "Table", "PartialObjectMetadata", "PartialObjectMetadataList"
    as_version: str = "v1"

    @property
    def is_plain_json(self) -> bool:
        return self.media_type == JSON and not self.as_kind


PLAIN = Format()


def _media_ranges(accept: str) -> Iterable[tuple[str, dict[str, str]]]:
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        params: dict[str, str] = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip().lower()] = v.strip()
        if media:
            yield media, params


def negotiate(accept: str | None) -> Format:
    """The first acceptable form in the client's Accept header (406 if none)."""
    if not accept:
        return PLAIN
    offered = []
    for media, params in _media_ranges(accept):
        offered.append(media)
        as_kind = params.get("as", "")
        if media in (JSON, "application/*", "*/*") or media.startswith("*"):
            if as_kind in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList"):
                if params.get("g", "meta.k8s.io") != "meta.k8s.io":
                    continue
                version = params.get("v", "v1")
                if version not in ("v1", "v1beta1"):
                    continue
                return Format(JSON, as_kind, version)
            if as_kind:
                continue
            return PLAIN
        if media in (YAML, "application/x-yaml", "text/yaml") and not as_kind:
            return Format(YAML)
    raise errors.not_acceptable([JSON, YAML])


def json_response(body: bytes, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def status_response(request: web.Request | None, err: errors.ApiError) -> web.Response:
    """A Status body for an error, with the matching HTTP code."""
    headers = None
    retry = (err.details or {}).get("retryAfterSeconds")
    if retry:
        headers = {"Retry-After": str(retry)}
    return json_response(orjson.dumps(err.status()), err.code, headers)


def success_status(info: ResourceInfo, name: str, uid: str = "") -> dict[str, Any]:
    """The Status Success that deletes and bindings answer with."""
    details: dict[str, Any] = {"name": name, "kind": info.resource}
    if info.group:
        details["group"] = info.group
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}


def partial_metadata(obj: dict, version: str) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj.get("metadata") or {}}


def to_table(info: ResourceInfo, objects: list[dict], list_meta: dict[str, Any],
             include_object: str, version: str) -> dict[str, Any]:
    """A meta.k8s.io Table of the objects (``includeObject``: None, Metadata or Object)."""
    from tinykube.api import tables

    try:
        table = tables.to_table(info, objects, include_object=include_object or "Metadata",
                                resource_version=list_meta.get("resourceVersion"),
                                continue_token=list_meta.get("continue"),
                                remaining_item_count=list_meta.get("remainingItemCount"))
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None
    table["apiVersion"] = f"meta.k8s.io/{version}"
    return table


def encode_object(fmt: Format, info: ResourceInfo, obj: dict | None, raw: bytes | None,
                  include_object: str = "", status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    """One object in the requested form; ``raw`` is its JSON when already serialized."""
    if fmt.is_plain_json:
        return json_response(raw if raw is not None else orjson.dumps(obj), status, headers)
    if obj is None:
        obj = orjson.loads(raw or b"{}")
    if fmt.as_kind == "Table":
        body: Any = to_table(info, [obj], {"resourceVersion": (obj.get("metadata") or {})
                                           .get("resourceVersion", "")},
                             include_object, fmt.as_version)
    elif fmt.as_kind.startswith("PartialObjectMetadata"):
        body = partial_metadata(obj, fmt.as_version)
    else:
        body = obj
    return _encode(fmt, body, status, headers)


def encode_list(fmt: Format, info: ResourceInfo, raws: list[bytes], objects: list[dict] | None,
                list_meta: dict[str, Any], include_object: str = "") -> web.Response:
    """A list in the requested form; plain JSON concatenates the cached bytes."""
    if fmt.is_plain_json:
        head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version,
                             "metadata": list_meta})
        body = head[:-1] + b',"items":[' + b",".join(raws) + b"]}"
        return json_response(body)
    if objects is None:
        objects = [orjson.loads(r) for r in raws]
    if fmt.as_kind == "Table":
        out: Any = to_table(info, objects, list_meta, include_object, fmt.as_version)
    elif fmt.as_kind.startswith("PartialObjectMetadata"):
        out = {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{fmt.as_version}",
               "metadata": list_meta,
               "items": [partial_metadata(o, fmt.as_version) for o in objects]}
    else:
        out = {"kind": info.list_kind, "apiVersion": info.api_version, "metadata": list_meta,
               "items": objects}
    return _encode(fmt, out, 200, None)


def _encode(fmt: Format, body: Any, status: int, headers: dict[str, str] | None) -> web.Response:
    if fmt.media_type == YAML:
        text = yaml.safe_dump(body, default_flow_style=False, sort_keys=False)
        return web.Response(text=text, status=status, content_type=YAML, headers=headers)
    return json_response(orjson.dumps(body), status, headers)


def made_list(request: web.Request, info: ResourceInfo, items: list[dict]) -> web.Response:
    """A list of objects the server makes on request and never stores (componentstatuses,
    metrics), in the form the request asks for."""
    return encode_list(negotiate(request.headers.get("Accept")), info, [orjson.dumps(i) for i in items], items, {},
                       request.query.get("includeObject", ""))


def made_object(request: web.Request, info: ResourceInfo, obj: dict) -> web.Response:
    """One such object, in the form the request asks for."""
    return encode_object(negotiate(request.headers.get("Accept")), info, obj, None,
                         request.query.get("includeObject", ""))
