"""The per-request context the REST handlers share: who, what, where, and how to answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from aiohttp import web

from tinykube.api import errors
from tinykube.api.kinds import ResourceInfo, lookup
from tinykube.apiserver.objects import Objects
from tinykube.apiserver.registry import strategy_for
from tinykube.apiserver.registry import eventsv1
from tinykube.apiserver.registry.base import Strategy
from tinykube.apiserver.request import REQUEST_INFO, RequestInfo
from tinykube.apiserver.responses import Format, negotiate

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")
CORE_EVENTS = lookup("", "v1", "events")


@dataclass
class Context:
    server: "APIServer"
    request: web.Request
    info: RequestInfo
    resource: ResourceInfo
    strategy: Strategy
    namespace: str
    name: str
    subresource: str
    fmt: Format
    # The resource as the client addressed it, when it is a view of another one's storage
    # (events.k8s.io/v1 Events are core/v1 Events converted at the edge).
    client_resource: ResourceInfo | None = None
    view: Callable[[dict], dict] | None = None
    unview: Callable[[dict], dict] | None = None

    @classmethod
    def build(cls, server: "APIServer", request: web.Request, resource: ResourceInfo) -> "Context":
        info: RequestInfo = request[REQUEST_INFO]
        client_resource, view, unview = resource, None, None
        if (resource.group, resource.resource) == ("events.k8s.io", "events"):
            resource, view, unview = CORE_EVENTS, eventsv1.to_v1, eventsv1.to_core
        return cls(server, request, info, resource, strategy_for(resource),
                   info.namespace if resource.namespaced else "", info.name, info.subresource,
                   negotiate(request.headers.get("Accept")), client_resource, view, unview)

    @property
    def shown_resource(self) -> ResourceInfo:
        """The resource whose kind and version responses are encoded as."""
        return self.client_resource or self.resource

    def to_client(self, obj: dict) -> dict:
        return self.view(obj) if self.view is not None else obj

    def from_client(self, obj: dict) -> dict:
        return self.unview(obj) if self.unview is not None else obj

    @property
    def objects(self) -> Objects:
        return Objects(self.server.store, self.resource)

    @property
    def query(self):
        return self.request.query

    @property
    def dry_run(self) -> bool:
        values = self.request.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise errors.bad_request(
                    f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    @property
    def field_manager(self) -> str:
        return self.request.query.get("fieldManager") or _manager_from_agent(self.info.user_agent)

    @property
    def field_validation(self) -> str:
        value = self.request.query.get("fieldValidation", "")
        if not value:
            return "Warn"
        if value not in FIELD_VALIDATION:
            raise errors.bad_request(f"fieldValidation parameter unsupported: {value}")
        return value

    @property
    def max_body(self) -> int:
        return self.server.config.max_request_bytes

    def int_param(self, name: str) -> int | None:
        raw = self.request.query.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError:
            raise errors.bad_request(f'invalid value for {name}: "{raw}"') from None


def _manager_from_agent(user_agent: str) -> str:
    """Upstream's default field manager: the user agent up to the first '/'."""
    return (user_agent.split("/", 1)[0] or "unknown")[:128]
