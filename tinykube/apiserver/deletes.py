"""DELETE and DELETECOLLECTION: graceful deletion, finalizers and propagation policies.

An object goes at once unless something must happen first: finalizers (including the
``orphan``/``foregroundDeletion`` ones the propagation policy adds, for the garbage
collector), a grace period (pods on a node: the kubelet stops them, then deletes with
``gracePeriodSeconds=0``) or, for namespaces, the namespace controller's cleanup. Then it
gets ``deletionTimestamp`` and ``deletionGracePeriodSeconds`` and stays until the last
finalizer is removed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson
from aiohttp import web

from tinykube.api import errors, meta
from tinykube.apiserver.admission import DELETE, Attributes
from tinykube.apiserver.body import OBJECT_TYPES, media_type, parse_document, read_bytes
from tinykube.apiserver.context import Context
from tinykube.apiserver.listing import Selection
from tinykube.apiserver.responses import encode_object, json_response, success_status
from tinykube.api.meta import json_copy

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
POLICIES = ("Orphan", "Background", "Foreground")
DELETE_ATTEMPTS = 16


@dataclass
class DeleteOptions:
    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


async def parse_options(ctx: Context) -> DeleteOptions:
    """DeleteOptions from the body (kubectl, client-go) or the query string."""
    opts = DeleteOptions(dry_run=ctx.dry_run)
    raw = await read_bytes(ctx.request, ctx.max_body)
    body: dict = {}
    if raw.strip():
        content_type = media_type(ctx.request) or "application/json"
        if content_type not in OBJECT_TYPES:
            raise errors.unsupported_media_type(content_type, OBJECT_TYPES)
        parsed = parse_document(raw, content_type)
        if not isinstance(parsed, dict):
            raise errors.bad_request("json: cannot unmarshal into Go value of type "
                                     "v1.DeleteOptions")
        body = parsed
    policy = body.get("propagationPolicy") or ctx.query.get("propagationPolicy")
    orphan = body.get("orphanDependents")
    if orphan is None and "orphanDependents" in ctx.query:
        orphan = ctx.query["orphanDependents"].lower() == "true"
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan else "Background"
    if policy is not None and policy not in POLICIES:
        raise errors.invalid("DeleteOptions", "", [errors.Cause.not_supported(
            "propagationPolicy", policy, POLICIES)], group="meta.k8s.io")
    opts.propagation_policy = policy
    grace = body.get("gracePeriodSeconds")
    if grace is None:
        grace = ctx.int_param("gracePeriodSeconds")
    if grace is not None:
        if not isinstance(grace, int) or isinstance(grace, bool):
            raise errors.bad_request("gracePeriodSeconds must be an integer")
        opts.grace_period_seconds = grace
    preconditions = body.get("preconditions") or {}
    if isinstance(preconditions, dict):
        opts.uid = preconditions.get("uid") or None
        opts.resource_version = preconditions.get("resourceVersion") or None
    if body.get("dryRun"):
        if body["dryRun"] != ["All"]:
            raise errors.bad_request(f'dryRun: Unsupported value: {body["dryRun"]!r}')
        opts.dry_run = True
    return opts


def _check_preconditions(ctx: Context, obj: dict, revision: int, opts: DeleteOptions) -> None:
    if opts.uid and opts.uid != meta.uid(obj):
        raise errors.conflict(ctx.resource, ctx.name,
                              f"Precondition failed: UID in precondition: {opts.uid}, "
                              f"UID in object meta: {meta.uid(obj)}")
    if opts.resource_version and opts.resource_version != str(revision):
        raise errors.conflict(ctx.resource, ctx.name,
                              f"Precondition failed: ResourceVersion in precondition: "
                              f"{opts.resource_version}, ResourceVersion in object meta: "
                              f"{revision}")


def _policy_finalizers(current: list[str], policy: str | None) -> list[str]:
    finalizers = [f for f in current if not (
        policy in ("Background", "Foreground", "Orphan")
        and f in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER))]
    if policy is None:
        return list(current)
    if policy == "Orphan":
        finalizers.append(ORPHAN_FINALIZER)
    elif policy == "Foreground":
        finalizers.append(FOREGROUND_FINALIZER)
    return finalizers


def _timestamp_after(seconds: int) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def delete(ctx: Context) -> web.StreamResponse:
    opts = await parse_options(ctx)
    await ctx.server.admission.validate(Attributes(
        DELETE, ctx.resource, ctx.namespace, ctx.name, None, None, ctx.info.user,
        ctx.subresource, opts.dry_run))
    obj, removed = await delete_object(ctx, ctx.name, opts)
    if not removed or ctx.strategy.return_deleted_object:
        return encode_object(ctx.fmt, ctx.shown_resource, ctx.to_client(obj), None)
    return json_response(_status_bytes(ctx, obj))


def _status_bytes(ctx: Context, obj: dict) -> bytes:
    return orjson.dumps(success_status(ctx.shown_resource, meta.name(obj), meta.uid(obj)))


async def delete_object(ctx: Context, name: str, opts: DeleteOptions) -> tuple[dict, bool]:
    """Delete or begin deleting one object; returns (object, whether it is gone)."""
    strategy = ctx.strategy
    for _ in range(DELETE_ATTEMPTS):
        current, revision = await ctx.objects.get(ctx.namespace, name)
        _check_preconditions(ctx, current, revision, opts)
        md = meta.metadata(current)
        grace = strategy.graceful_delete_seconds(current, opts.grace_period_seconds)
        finalizers = _policy_finalizers(meta.finalizers(current), opts.propagation_policy)
        if md.get("deletionTimestamp"):
            error = strategy.repeated_delete_error(current)
            if error is not None:
                raise error
            shortened = grace < (md.get("deletionGracePeriodSeconds") or 0)
            if not shortened and (finalizers or grace > 0 or strategy.keeps_object(current)):
                return current, False
        if finalizers or grace > 0 or strategy.keeps_object(current):
            new = json_copy(current)
            new_md = meta.ensure_metadata(new)
            if not new_md.get("deletionTimestamp") or grace < (
                    new_md.get("deletionGracePeriodSeconds") or 0):
                new_md["deletionTimestamp"] = _timestamp_after(grace)
                new_md["deletionGracePeriodSeconds"] = grace
                if new_md.get("generation"):
                    new_md["generation"] = int(new_md["generation"]) + 1
            if finalizers:
                new_md["finalizers"] = finalizers
            else:
                new_md.pop("finalizers", None)
            strategy.mark_deleting(new)
            if opts.dry_run:
                return new, False
            try:
                return await ctx.objects.update(ctx.namespace, name, new, revision,
                                                strategy.ttl(ctx.server)), False
            except errors.ApiError as err:
                if err.reason == "Conflict":
                    continue
                raise
        if opts.dry_run:
            return current, True
        try:
            deleted = await ctx.objects.delete(ctx.namespace, name, revision)
        except errors.ApiError as err:
            if err.reason == "Conflict":
                continue
            raise
        await strategy.after_delete(ctx.server, deleted)
        return deleted, True
    raise errors.conflict(ctx.resource, name)


async def delete_collection(ctx: Context) -> web.StreamResponse:
    """Delete every object the selectors match (in the namespace, if one is given)."""
    opts = await parse_options(ctx)
    selection = Selection.parse(ctx.strategy, ctx.query.get("labelSelector"),
                                ctx.query.get("fieldSelector"))
    predicate = selection.predicate()
    await ctx.server.watch_cache.sync()
    names = [(meta.namespace(c.obj), meta.name(c.obj))
             for c in ctx.server.watch_cache.list(ctx.resource, ctx.namespace, predicate)]
    for namespace, name in names:
        sub = copy.copy(ctx)
        sub.namespace, sub.name = namespace, name
        await ctx.server.admission.validate(Attributes(
            DELETE, ctx.resource, namespace, name, None, None, ctx.info.user, "",
            opts.dry_run))
        try:
            await delete_object(sub, name, opts)
        except errors.ApiError as err:
            if err.code != 404:
                raise
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    return json_response(orjson.dumps(status))
