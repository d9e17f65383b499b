"""API discovery: ``/api``, ``/apis`` and the per-group-version resource lists.

Everything is derived from ``tinykube.api.kinds.RESOURCES``, so a kind added there is
discoverable without touching this module. Two formats are served, as kube-apiserver
does: the classic documents (APIVersions, APIGroupList, APIGroup, APIResourceList) and
aggregated discovery (``apidiscovery.k8s.io`` v2 and v2beta1 APIGroupDiscoveryList),
which kubectl asks for first because it answers with one request what otherwise takes
one per group-version. Documents are built once per server and served with an ETag.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import orjson
from aiohttp import web

from tinykube.api import kinds
from tinykube.api.kinds import ResourceInfo

STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    """How a subresource appears in discovery: its kind (maybe in another group) and verbs."""

    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # None: the parent's group and version
    version: str | None = None


# Upstream's subresource kinds and verbs (k8s.io/kubernetes pkg/registry/*/storage).
SUBRESOURCES: dict[str, Subresource] = {
    "status": Subresource("", STATUS_VERBS),
    "scale": Subresource("Scale", STATUS_VERBS, "autoscaling", "v1"),
    "binding": Subresource("Binding", ("create",)),
    "log": Subresource("Pod", ("get",)),
    "exec": Subresource("PodExecOptions", ("create", "get")),
    "attach": Subresource("PodAttachOptions", ("create", "get")),
    "portforward": Subresource("PodPortForwardOptions", ("create", "get")),
    "eviction": Subresource("Eviction", ("create",), "policy", "v1"),
    "ephemeralcontainers": Subresource("", STATUS_VERBS),
    "finalize": Subresource("", ("update",)),
    "token": Subresource("TokenRequest", ("create",), "authentication.k8s.io", "v1"),
    "proxy": Subresource("", ("create", "delete", "get", "patch", "update")),
}
_PROXY_KINDS = {"Pod": "PodProxyOptions", "Service": "ServiceProxyOptions",
                "Node": "NodeProxyOptions"}

AGGREGATED_VERSIONS = ("v2", "v2beta1")
AGGREGATED_AS = "APIGroupDiscoveryList"


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Upstream's ``storageVersionHash``: base64 of the first 8 bytes of sha256(g/v/k)."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def subresource(name: str) -> Subresource:
    """How subresource ``name`` appears in discovery (one not listed appears as status)."""
    return SUBRESOURCES.get(name, Subresource("", STATUS_VERBS))


def subresource_kind(parent: ResourceInfo, name: str) -> tuple[str, str, str]:
    """(group, version, kind) of ``<parent>/<name>`` as discovery reports it."""
    sub = subresource(name)
    kind = sub.kind or (_PROXY_KINDS.get(parent.kind, "") if name == "proxy" else "")
    return (
        parent.group if sub.group is None else sub.group,
        parent.version if sub.version is None else sub.version,
        kind or parent.kind,
    )


def api_resources(info: ResourceInfo) -> list[dict]:
    """The APIResource entries of one resource: itself, then each subresource."""
    entry: dict = {
        "name": info.resource,
        "singularName": info.singular_name,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    entry["storageVersionHash"] = storage_version_hash(info.group, info.version, info.kind)
    out = [entry]
    for name in info.subresources:
        group, version, kind = subresource_kind(info, name)
        sub: dict = {"name": f"{info.resource}/{name}", "singularName": "",
                     "namespaced": info.namespaced, "kind": kind,
                     "verbs": list(subresource(name).verbs)}
        if (group, version) != (info.group, info.version):
            sub["group"], sub["version"] = group, version
        out.append(sub)
    return out


def resource_list(group: str, version: str) -> dict:
    """``APIResourceList`` for ``/api/v1`` or ``/apis/<group>/<version>``."""
    doc: dict = {"kind": "APIResourceList"}
    if group:
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = f"{group}/{version}" if group else version
    doc["resources"] = [e for r in kinds.resources_in(group, version) for e in api_resources(r)]
    return doc


def _version_ref(group: str, version: str) -> dict:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group(group: str, versions: list[str]) -> dict:
    return {
        "name": group,
        "versions": [_version_ref(group, v) for v in versions],
        "preferredVersion": _version_ref(group, versions[0]),
    }


def api_group_list() -> dict:
    """``APIGroupList`` for ``/apis``: every named group, preferred version first."""
    groups = kinds.group_versions()
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [api_group(g, groups[g]) for g in kinds.GROUP_ORDER if g],
    }


def api_versions(server_address: str) -> dict:
    """``APIVersions`` for ``/api``."""
    return {
        "kind": "APIVersions",
        "versions": kinds.group_versions().get("", ["v1"]),
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


# -- aggregated discovery (apidiscovery.k8s.io) ------------------------------------------


def _discovery_resource(info: ResourceInfo) -> dict:
    entry: dict = {
        "resource": info.resource,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular_name,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subs = []
    for name in info.subresources:
        group, version, kind = subresource_kind(info, name)
        subs.append({
            "subresource": name,
            "responseKind": {"group": group, "version": version, "kind": kind},
            "verbs": list(subresource(name).verbs),
        })
    if subs:
        entry["subresources"] = subs
    return entry


def _discovery_group(group: str, versions: list[str]) -> dict:
    return {
        "metadata": {"name": group, "creationTimestamp": None},
        "versions": [
            {
                "version": v,
                "resources": [_discovery_resource(r) for r in kinds.resources_in(group, v)],
                "freshness": "Current",
            }
            for v in versions
        ],
    }


def aggregated_list(core: bool, version: str) -> dict:
    """APIGroupDiscoveryList: the core group for ``/api``, named groups for ``/apis``."""
    groups = kinds.group_versions()
    names = [""] if core else [g for g in kinds.GROUP_ORDER if g]
    return {
        "kind": AGGREGATED_AS,
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": [_discovery_group(g, groups[g]) for g in names if g in groups],
    }


def negotiate_aggregated(accept: str) -> str | None:
    """The aggregated discovery version the client prefers, or None for the classic form.

    Media ranges are tried in the client's order (kubectl lists v2, then v2beta1, then
    plain ``application/json``); the first one tinykube can produce wins.
    """
    for media_range in accept.split(","):
        params = dict(
            p.strip().split("=", 1) for p in media_range.split(";")[1:] if "=" in p
        )
        mime = media_range.split(";", 1)[0].strip()
        if mime in ("application/json", "*/*") and not params:
            return None
        if (mime == "application/json" and params.get("g") == "apidiscovery.k8s.io"
                and params.get("as") == AGGREGATED_AS
                and params.get("v") in AGGREGATED_VERSIONS):
            return params["v"]
    return None


# -- serving -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """A serialized document with its ETag and content type (shared with openapi)."""

    body: bytes
    etag: str
    content_type: str = "application/json"
    cache_control: str = "no-cache, private"

    @classmethod
    def of(cls, doc: dict, content_type: str = "application/json") -> "Document":
        body = orjson.dumps(doc)
        return cls(body, '"' + hashlib.sha512(body).hexdigest()[:32].upper() + '"', content_type)

    def respond(self, request: web.Request) -> web.Response:
        headers = {"ETag": self.etag, "Vary": "Accept", "Cache-Control": self.cache_control}
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304, headers=headers)
        resp = web.Response(body=self.body, headers=headers)
        resp.headers["Content-Type"] = self.content_type
        return resp


def _aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as={AGGREGATED_AS}"


class DiscoveryDocuments:
    """Every discovery document of one server, serialized once."""

    def __init__(self) -> None:
        self.groups = Document.of(api_group_list())
        gv = kinds.group_versions()
        self.group_docs = {
            g: Document.of({"kind": "APIGroup", "apiVersion": "v1", **api_group(g, vs)})
            for g, vs in gv.items() if g
        }
        self.resource_lists = {
            (g, v): Document.of(resource_list(g, v)) for g, vs in gv.items() for v in vs
        }
        self.aggregated = {
            (core, v): Document.of(aggregated_list(core, v), _aggregated_content_type(v))
            for core in (True, False) for v in AGGREGATED_VERSIONS
        }


def _found(doc: Document | None, request: web.Request) -> web.Response:
    """The document, or the pipeline's 404 Status for an unknown discovery path."""
    if doc is None:
        raise web.HTTPNotFound()
    return doc.respond(request)


def setup(app: web.Application, server: object) -> None:
    """Register the discovery routes."""
    docs = DiscoveryDocuments()

    def aggregated(request: web.Request, core: bool) -> web.Response | None:
        version = negotiate_aggregated(request.headers.get("Accept", ""))
        return docs.aggregated[(core, version)].respond(request) if version else None

    async def handle_api(request: web.Request) -> web.Response:
        agg = aggregated(request, core=True)
        if agg is not None:
            return agg
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        address = f"{sock[0]}:{sock[1]}" if sock else request.host
        return Document.of(api_versions(address)).respond(request)

    async def handle_apis(request: web.Request) -> web.Response:
        return aggregated(request, core=False) or docs.groups.respond(request)

    async def handle_core_version(request: web.Request) -> web.Response:
        doc = docs.resource_lists.get(("", request.match_info["version"]))
        return _found(doc, request)

    async def handle_group(request: web.Request) -> web.Response:
        doc = docs.group_docs.get(request.match_info["group"])
        return _found(doc, request)

    async def handle_group_version(request: web.Request) -> web.Response:
        key = (request.match_info["group"], request.match_info["version"])
        return _found(docs.resource_lists.get(key) if key[0] else None, request)

    for path, handler in (
        ("/api", handle_api),
        ("/apis", handle_apis),
        ("/api/{version}", handle_core_version),
        ("/apis/{group}", handle_group),
        ("/apis/{group}/{version}", handle_group_version),
    ):
        app.router.add_get(path, handler)
        app.router.add_get(path + "/", handler)
