"""URL routing of the resource API: ``/api/v1/...`` and ``/apis/<group>/<version>/...``.

The pipeline middleware has already parsed the RequestInfo and authorized it; this module
maps it to a resource, checks scope and verb, and hands it to the verb's handler. Writes
run shielded from client disconnects: a write the client stopped waiting for still
completes (or fails) as a whole, as it does in kube-apiserver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Awaitable, Callable

from aiohttp import web

from tinykube.api import errors
from tinykube.api.kinds import ResourceInfo, lookup
from tinykube.apiserver import deletes, reads, subresources, watch, writes
from tinykube.apiserver.context import Context
from tinykube.apiserver.request import REQUEST_INFO, RequestInfo

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

NOT_FOUND = "the server could not find the requested resource"
MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})
COLLECTION_VERBS = frozenset({"list", "watch", "deletecollection", "create"})

Handler = Callable[[Context], Awaitable[web.StreamResponse]]
HANDLERS: dict[str, Handler] = {
    "get": reads.get,
    "list": reads.list_,
    "watch": watch.watch,
    "create": writes.create,
    "update": writes.update,
    "patch": writes.patch,
    "delete": deletes.delete,
    "deletecollection": deletes.delete_collection,
}


def not_found() -> errors.ApiError:
    return errors.ApiError(404, "NotFound", NOT_FOUND)


def resolve(info: RequestInfo) -> ResourceInfo:
    """The resource a request addresses, with its scope checked (404 otherwise)."""
    if not info.is_resource_request:
        raise not_found()
    resource = lookup(info.api_group, info.api_version, info.resource)
    if resource is None:
        raise not_found()
    if resource.resource == "namespaces":
        info.namespace = ""
    elif not resource.namespaced and info.namespace:
        raise not_found()
    elif resource.namespaced and not info.namespace and not (
            info.verb in ("list", "watch") and not info.name):
        raise not_found()
    if not info.subresource and info.verb not in resource.verbs and not (
            info.verb == "watch" and "list" in resource.verbs):
        raise errors.method_not_supported(resource, info.verb)
    if info.verb == "create" and info.name and not info.subresource:
        raise errors.method_not_supported(resource, "create")
    return resource


def add_resource_routes(app: web.Application, server: "APIServer") -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        info: RequestInfo = request[REQUEST_INFO]
        if _is_legacy_binding(info):
            ctx = Context.build(server, request, PODS)
            return await server.run_shielded(subresources.bind(ctx, legacy=True))
        resource = resolve(info)
        ctx = Context.build(server, request, resource)
        if info.verb in MUTATING and info.subresource not in subresources.NODE_PROXIED:
            # (streams to the kubelet must end with their client, so they are not shielded)
            return await server.run_shielded(_dispatch(ctx))
        return await _dispatch(ctx)

    app.router.add_route("*", "/api/v1/{tail:.+}", handle)
    app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", handle)


PODS = lookup("", "v1", "pods")


def _is_legacy_binding(info: RequestInfo) -> bool:
    """``POST /api/v1/namespaces/<ns>/bindings``: the pod is named by the Binding's name."""
    return (info.resource == "bindings" and not info.api_group and info.verb == "create"
            and bool(info.namespace) and not info.name)


async def _dispatch(ctx: Context) -> web.StreamResponse:
    if ctx.subresource:
        return await subresources.dispatch(ctx)
    handler = HANDLERS.get(ctx.info.verb)
    if handler is None:
        raise errors.method_not_supported(ctx.resource, ctx.info.verb)
    return await handler(ctx)

