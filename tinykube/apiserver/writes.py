"""CREATE, UPDATE and PATCH: the write pipeline after authentication and authorization.

decode -> defaulting -> mutating admission -> system metadata and strategy ->
validation -> validating admission -> allocations -> store, as kube-apiserver orders it.
Updates are optimistic: a stale ``resourceVersion`` is a 409; without one (and for
patches) the read-modify-write is retried on conflicts.
"""

from __future__ import annotations

from typing import Awaitable, Callable

import orjson
from aiohttp import web

from tinykube.api import errors, meta
from tinykube.apiserver import fieldvalidation, objectmeta, scheme
from tinykube.apiserver.admission import CREATE, UPDATE, Attributes
from tinykube.apiserver.body import read_object, read_patch
from tinykube.apiserver.context import Context
from tinykube.apiserver.responses import encode_object
from tinykube.api.meta import json_copy
from tinykube.api.patch import merge_patch

GENERATE_NAME_ATTEMPTS = 8
UPDATE_ATTEMPTS = 16

Mutation = Callable[[dict], Awaitable[dict] | dict]


def _respond(ctx: Context, obj: dict, status: int, warnings: list[str]) -> web.Response:
    response = encode_object(ctx.fmt, ctx.shown_resource, ctx.to_client(obj), None,
                             status=status)
    for name, value in fieldvalidation.warning_headers(warnings):
        response.headers.add(name, value)
    return response


def _attrs(ctx: Context, operation: str, obj: dict | None, old: dict | None,
           dry_run: bool) -> Attributes:
    return Attributes(operation, ctx.resource, ctx.namespace, meta.name(obj or old or {}) or
                      ctx.name, obj, old, ctx.info.user, ctx.subresource, dry_run)


# --- create ----------------------------------------------------------------------------


async def create(ctx: Context) -> web.StreamResponse:
    obj = ctx.from_client(await read_object(ctx.request, ctx.max_body))
    scheme.check_types(ctx.resource, obj)
    warnings = fieldvalidation.check(ctx.resource, obj, ctx.field_validation)
    created = await create_object(ctx, obj, ctx.dry_run)
    return _respond(ctx, created, 201, warnings)


async def create_object(ctx: Context, obj: dict, dry_run: bool) -> dict:
    """Run the create pipeline on a decoded object and store it; returns the stored object."""
    info, strategy = ctx.resource, ctx.strategy
    objectmeta.check_kind(info, obj)
    objectmeta.check_namespace(info, obj, ctx.namespace)
    scheme.apply_defaults(info, obj)
    await ctx.server.admission.admit(_attrs(ctx, CREATE, obj, None, dry_run))
    generate = not meta.name(obj) and bool(meta.generate_name(obj))
    objectmeta.fill_for_create(info, obj)
    with scheme.decode_errors(info):
        strategy.prepare_for_create(obj)
    scheme.validate(info, obj, None)
    await ctx.server.admission.validate(_attrs(ctx, CREATE, obj, None, dry_run))
    scheme.record_managed_fields(info, obj, None, ctx.field_manager, "Update", "")
    await strategy.before_create(ctx.server, obj, dry_run)
    if dry_run:
        return _dry_run_result(obj)
    try:
        for attempt in range(GENERATE_NAME_ATTEMPTS):
            try:
                return await ctx.objects.create(ctx.namespace, meta.name(obj), obj,
                                                strategy.ttl(ctx.server))
            except errors.ApiError as err:
                if err.reason != "AlreadyExists" or not generate \
                        or attempt == GENERATE_NAME_ATTEMPTS - 1:
                    raise
                meta.ensure_metadata(obj)["name"] = objectmeta.generated_name(
                    meta.generate_name(obj))
        raise AssertionError("unreachable")
    except BaseException:
        await strategy.undo_create(ctx.server, obj)
        raise


def _dry_run_result(obj: dict) -> dict:
    out = json_copy(obj)
    meta.ensure_metadata(out).pop("resourceVersion", None)
    return out


# --- update ----------------------------------------------------------------------------


async def update(ctx: Context) -> web.StreamResponse:
    body = ctx.from_client(await read_object(ctx.request, ctx.max_body))
    scheme.check_types(ctx.resource, body)
    warnings = fieldvalidation.check(ctx.resource, body, ctx.field_validation)
    objectmeta.check_kind(ctx.resource, body)
    objectmeta.check_namespace(ctx.resource, body, ctx.namespace)
    objectmeta.check_name(ctx.resource, body, ctx.name)
    precondition = meta.resource_version(body)

    def replace(current: dict) -> dict:
        return json_copy(body)

    result, status = await update_object(ctx, replace, precondition, ctx.dry_run)
    return _respond(ctx, result, status, warnings)


async def update_object(ctx: Context, mutate: Mutation, precondition: str,
                        dry_run: bool, create_missing: Callable[[], dict] | None = None
                        ) -> tuple[dict, int]:
    """Read-modify-write with retries; returns (object, HTTP status).

    ``mutate`` turns the current object into the desired one. With a ``precondition``
    resourceVersion a conflict is the client's to resolve (409), otherwise it is retried
    on the fresh object.
    """
    info = ctx.resource
    for _ in range(UPDATE_ATTEMPTS):
        found = await ctx.objects.get_twice(ctx.namespace, ctx.name)
        if found is None:
            if create_missing is None:
                raise errors.not_found(info, ctx.name)
            return await create_object(ctx, create_missing(), dry_run), 201
        current, private, revision = found
        if precondition and precondition != str(revision):
            raise errors.conflict(info, ctx.name)
        result = mutate(private)
        desired = await result if isinstance(result, Awaitable) else result
        stored = await _store_update(ctx, desired, current, revision, dry_run)
        if stored is not None:
            return stored, 200
        if precondition:
            raise errors.conflict(info, ctx.name)
    raise errors.conflict(info, ctx.name)


async def _store_update(ctx: Context, new: dict, old: dict, revision: int,
                        dry_run: bool) -> dict | None:
    """Run the update pipeline and store; None when the object changed underneath."""
    info, strategy = ctx.resource, ctx.strategy
    objectmeta.check_kind(info, new)
    objectmeta.check_namespace(info, new, ctx.namespace)
    objectmeta.check_name(info, new, ctx.name)
    objectmeta.carry_for_update(info, new, old)
    if ctx.subresource == "status":
        new = strategy.prepare_for_status_update(new, old)
    elif ctx.subresource == "finalize":
        new = strategy.prepare_for_finalize(new, old)  # type: ignore[attr-defined]
    elif ctx.subresource == "ephemeralcontainers":
        new = strategy.prepare_for_ephemeral_containers(new, old)  # type: ignore[attr-defined]
        scheme.apply_defaults(info, new)  # the new containers' defaults
    else:
        scheme.apply_defaults(info, new)
        strategy.prepare_for_update(new, old)
    await ctx.server.admission.admit(_attrs(ctx, UPDATE, new, old, dry_run))
    scheme.validate(info, new, old)
    await ctx.server.admission.validate(_attrs(ctx, UPDATE, new, old, dry_run))
    if not ctx.subresource:
        await strategy.before_update(ctx.server, new, old, dry_run)
    if _same(new, old):
        return old
    scheme.record_managed_fields(info, new, old, ctx.field_manager, "Update", ctx.subresource)
    if dry_run:
        return new
    if meta.deletion_timestamp(new) and not meta.finalizers(new) \
            and not strategy.keeps_object(new) and not _graceful_pending(new):
        try:
            deleted = await ctx.objects.delete(ctx.namespace, ctx.name, revision)
        except errors.ApiError as err:
            if err.reason == "Conflict":
                return None
            raise
        await strategy.after_delete(ctx.server, deleted)
        return new
    try:
        return await ctx.objects.update(ctx.namespace, ctx.name, new, revision,
                                        strategy.ttl(ctx.server))
    except errors.ApiError as err:
        if err.reason == "Conflict":
            return None
        raise


def _graceful_pending(obj: dict) -> bool:
    """A pod inside its grace period stays until the kubelet deletes it."""
    return bool(meta.metadata(obj).get("deletionGracePeriodSeconds"))


def _same(new: dict, old: dict) -> bool:
    """A no-op write keeps the object (and its resourceVersion) as it is."""
    def canonical(obj: dict) -> bytes:
        md = {k: v for k, v in meta.metadata(obj).items()
              if k not in ("resourceVersion", "managedFields")}
        return orjson.dumps({**obj, "metadata": md}, option=orjson.OPT_SORT_KEYS)

    return canonical(new) == canonical(old)


# --- patch -----------------------------------------------------------------------------


async def patch(ctx: Context) -> web.StreamResponse:
    patch_type, document = await read_patch(ctx.request, ctx.max_body)
    info = ctx.resource
    dry_run = ctx.dry_run
    warnings: list[str] = []
    precondition = ""
    if isinstance(document, dict):
        precondition = (document.get("metadata") or {}).get("resourceVersion") or "" \
            if isinstance(document.get("metadata"), dict) else ""
    if patch_type == "apply":
        return await _apply(ctx, document, dry_run)
    mode = ctx.field_validation
    # What the stored object holds passed these checks when it was written, so a JSON
    # merge patch can bring a wrong type or an unknown field only in the values it
    # writes: checking those is the same answer as checking the whole result (a pod's
    # status PATCH would otherwise walk the entire pod for both).
    written = merge_patch({}, document) \
        if patch_type == "merge" and isinstance(document, dict) and ctx.shown_resource is info else None

    def mutate(current: dict) -> dict:
        # current is update_object's private copy: the patch may work on it in place
        patched = ctx.from_client(scheme.apply_patch(ctx.shown_resource, patch_type,
                                                     ctx.to_client(current), document,
                                                     owned=True))
        checked = patched if written is None else written
        scheme.check_types(info, checked)
        warnings[:] = fieldvalidation.check(info, checked, mode)
        return patched

    result, status = await update_object(ctx, mutate, str(precondition), dry_run)
    return _respond(ctx, result, status, warnings)


async def _apply(ctx: Context, document: dict, dry_run: bool) -> web.StreamResponse:
    """Server-side apply: create when missing, else merge the manager's fields."""
    manager = ctx.request.query.get("fieldManager", "")
    if not manager:
        raise errors.bad_request("PATCH, application/apply-patch+yaml requires fieldManager "
                                 "parameter")
    force = ctx.request.query.get("force", "").lower() in ("1", "true")
    scheme.check_types(ctx.shown_resource, document)
    warnings = fieldvalidation.check(ctx.shown_resource, document, ctx.field_validation)

    shown = ctx.shown_resource

    def mutate(current: dict) -> dict:
        return ctx.from_client(scheme.server_side_apply(shown, ctx.to_client(current), document,
                                                        manager, force))

    def create_missing() -> dict:
        obj = ctx.from_client(scheme.server_side_apply(shown, None, json_copy(document),
                                                       manager, force))
        meta.ensure_metadata(obj).setdefault("name", ctx.name)
        return obj

    result, status = await update_object(ctx, mutate, "", dry_run, create_missing)
    return _respond(ctx, result, status, warnings)
