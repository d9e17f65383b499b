"""What one request is about, parsed from its URL once and shared by every stage.

This is part of the contract between the API server core and its plug-ins (discovery,
metrics, audit, access reviews): ``RequestInfo`` is what authorizers decide on and what
request observers receive. Parsing follows kube-apiserver's RequestInfoFactory:
``/api/v1/namespaces/<ns>/<resource>/<name>/<subresource>`` and
``/apis/<group>/<version>/...``, with the legacy ``/watch/`` prefix and ``?watch=1``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

from aiohttp import web

from tinykube.api.meta import new_uid

# Path segments after /namespaces/<name> that are subresources of the Namespace itself.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) caller, as authenticators report it."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


ANONYMOUS = UserInfo("system:anonymous", ("system:unauthenticated",))


@dataclass
class RequestInfo:
    """The parsed request: the attributes authorization, metrics and audit work on.

    ``verb`` is the Kubernetes verb (get, list, watch, create, update, patch, delete,
    deletecollection) for resource requests and the lower-case HTTP method otherwise.
    ``user`` is filled in by the authentication stage, ``sent_status`` once the response's
    headers went out.
    """

    verb: str
    path: str
    is_resource_request: bool = False
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    user: UserInfo = ANONYMOUS
    method: str = "GET"
    source_ip: str = ""
    user_agent: str = ""
    request_uri: str = ""
    audit_id: str = field(default_factory=new_uid)
    started: float = field(default_factory=time.time)
    sent_status: int | None = None  # the status of response headers already sent

    @property
    def group_version(self) -> str:
        return f"{self.api_group}/{self.api_version}" if self.api_group else self.api_version


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes")


# Where the pipeline keeps each request's RequestInfo: a typed key where aiohttp has them
# (3.12 and later warn about plain strings), the plain string before.
REQUEST_INFO = web.RequestKey("request_info", RequestInfo) if hasattr(web, "RequestKey") else "request_info"


def parse_request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Parse a request the way kube-apiserver's RequestInfoFactory does."""
    method = method.upper()
    info = RequestInfo(verb=method.lower(), path=path, method=method)
    parts = [p for p in path.strip("/").split("/") if p != ""]
    if not parts or parts[0] not in ("api", "apis"):
        return info
    info.api_prefix = parts[0]
    rest = parts[1:]
    if info.api_prefix == "apis":
        if len(rest) < 2:
            return info
        info.api_group, info.api_version = rest[0], rest[1]
        rest = rest[2:]
    else:
        if len(rest) < 1:
            return info
        info.api_version = rest[0]
        rest = rest[1:]
    if not rest:
        return info
    info.is_resource_request = True
    verb = "get" if method in ("GET", "HEAD") else _METHOD_VERBS.get(method, method.lower())
    if rest[0] == "watch":
        verb = "watch"
        rest = rest[1:]
        if not rest:
            info.is_resource_request = False
            return info
    if rest[0] == "namespaces" and len(rest) > 1:
        info.namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if len(rest) >= 3:
        info.subresource = rest[2]
    if len(rest) >= 2:
        info.name = rest[1]
    info.resource = rest[0]
    if not info.name:
        if verb == "get":
            verb = "watch" if _truthy(query.get("watch")) else "list"
        elif verb == "delete":
            verb = "deletecollection"
    elif verb == "get" and _truthy(query.get("watch")):
        verb = "watch"
    info.verb = verb
    return info
