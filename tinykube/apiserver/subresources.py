"""Subresources: status, scale, pods/binding, pods/eviction, pods/ephemeralcontainers,
serviceaccounts/token, namespaces/finalize, and the node-proxied
pods/log|exec|attach|portforward."""

from __future__ import annotations

import copy
import time
from typing import Any

import orjson
from aiohttp import web

from tinykube.api import errors, meta, pods
from tinykube.api.kinds import lookup
from tinykube.api.selectors import LabelSelector
from tinykube.apiserver import reads, writes
from tinykube.apiserver.body import read_object
from tinykube.apiserver.context import Context
from tinykube.apiserver.deletes import DeleteOptions, delete_object
from tinykube.apiserver.objects import Objects
from tinykube.apiserver.responses import json_response
from tinykube.api.meta import json_copy

NODE_PROXIED = ("log", "exec", "attach", "portforward")
SCALABLE = ("deployments", "replicasets", "statefulsets", "replicationcontrollers")
PDBS = lookup("policy", "v1", "poddisruptionbudgets")
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600


def _success(code: int = 201, **details: Any) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": code}
    if details:
        body["details"] = details
    return json_response(orjson.dumps(body), code)


async def dispatch(ctx: Context) -> web.StreamResponse:
    """Route a subresource request by name and verb."""
    sub, verb = ctx.subresource, ctx.info.verb
    if sub not in ctx.resource.subresources:
        raise errors.ApiError(404, "NotFound", "the server could not find the requested "
                              "resource")
    if sub in NODE_PROXIED and ctx.resource.resource == "pods":
        return await _node_proxy(ctx)
    if sub in ("status", "finalize", "ephemeralcontainers"):
        if verb == "get":
            return await reads.get(ctx)
        if verb == "update":
            return await writes.update(ctx)
        if verb == "patch":
            return await writes.patch(ctx)
    elif sub == "scale" and ctx.resource.resource in SCALABLE:
        if verb == "get":
            return await get_scale(ctx)
        if verb in ("update", "patch"):
            return await write_scale(ctx)
    elif sub == "binding" and verb == "create":
        return await bind(ctx)
    elif sub == "eviction" and verb == "create":
        return await evict(ctx)
    elif sub == "token" and verb == "create":
        return await token_request(ctx)
    raise errors.method_not_supported(ctx.resource, verb)


async def _node_proxy(ctx: Context) -> web.StreamResponse:
    from tinykube.apiserver.server import _load_plugin

    nodeproxy = _load_plugin("nodeproxy")
    if nodeproxy is None:
        raise errors.service_unavailable(f"pods/{ctx.subresource} is not available")
    pod, _ = await ctx.objects.get(ctx.namespace, ctx.name)
    return await nodeproxy.handle(ctx.request, ctx.server, ctx.subresource, pod)


# --- scale -------------------------------------------------------------------------------


def to_scale(obj: dict) -> dict:
    """The autoscaling/v1 Scale view of a scalable object."""
    md = meta.metadata(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector") or {}
    if "matchLabels" in selector or "matchExpressions" in selector:
        selector_text = str(LabelSelector.from_dict(selector))
    else:
        selector_text = str(LabelSelector.from_set(selector))
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                            "creationTimestamp") if k in md},
            "spec": {"replicas": int(spec.get("replicas", 1) or 0)},
            "status": {"replicas": int(status.get("replicas") or 0), "selector": selector_text}}


async def get_scale(ctx: Context) -> web.StreamResponse:
    obj, _ = await ctx.objects.get(ctx.namespace, ctx.name)
    return json_response(orjson.dumps(to_scale(obj)))


async def write_scale(ctx: Context) -> web.StreamResponse:
    """PUT or PATCH of a Scale: only spec.replicas reaches the object."""
    from tinykube.apiserver import scheme
    from tinykube.apiserver.body import read_patch

    if ctx.info.verb == "update":
        scale = await read_object(ctx.request, ctx.max_body)
        patch_type, document = "", None
    else:
        scale = None
        patch_type, document = await read_patch(ctx.request, ctx.max_body)
    precondition = meta.resource_version(scale) if scale else ""
    scale_info = lookup("autoscaling", "v1", "horizontalpodautoscalers")

    def mutate(current: dict) -> dict:
        wanted = scale
        if wanted is None:
            wanted = scheme.apply_patch(scale_info, "merge" if patch_type == "strategic"
                                        else patch_type, to_scale(current), document)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", ctx.name, [errors.Cause.invalid(
                "spec.replicas", replicas, "must be greater than or equal to 0")],
                group="autoscaling")
        current.setdefault("spec", {})["replicas"] = replicas
        return current

    sub = copy.copy(ctx)
    sub.subresource = ""
    result, _ = await writes.update_object(sub, mutate, precondition, ctx.dry_run)
    return json_response(orjson.dumps(to_scale(result)))


# --- pods/binding ------------------------------------------------------------------------


async def bind(ctx: Context, legacy: bool = False) -> web.StreamResponse:
    """Assign a pod to a node: spec.nodeName and the PodScheduled condition (201 Status).

    ``legacy``: the ``bindings`` collection, where the Binding's name names the pod.
    """
    binding = await read_object(ctx.request, ctx.max_body)
    if legacy:
        ctx = copy.copy(ctx)
        ctx.name = meta.name(binding)
        if not ctx.name:
            raise errors.invalid("Binding", "", [errors.Cause.required("metadata.name")])
    target = binding.get("target") or {}
    node = target.get("name") or ""
    if not node:
        raise errors.invalid("Binding", ctx.name, [errors.Cause.required("target.name")])
    binding_ns = meta.namespace(binding)
    if binding_ns and binding_ns != ctx.namespace:
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")

    def mutate(pod: dict) -> dict:
        if meta.deletion_timestamp(pod):
            raise errors.conflict("pods/binding", ctx.name,
                                  f"pod {ctx.name} is being deleted, cannot be assigned to a "
                                  "host")
        current = pods.node_name(pod)
        if current:
            raise errors.conflict("pods/binding", ctx.name,
                                  f'pod {ctx.name} is already assigned to node "{current}"')
        pod.setdefault("spec", {})["nodeName"] = node
        annotations = meta.annotations(binding)
        if annotations:
            meta.ensure_metadata(pod).setdefault("annotations", {}).update(annotations)
        status = pod.setdefault("status", {})
        pods.set_condition(status, {"type": "PodScheduled", "status": "True",
                                    "lastProbeTime": None,
                                    "lastTransitionTime": meta.now()})
        return pod

    await _update_raw(ctx, mutate)
    return _success(201)


async def _update_raw(ctx: Context, mutate) -> dict:
    """A server-internal read-modify-write that bypasses the status/spec split."""
    objects = ctx.objects
    for _ in range(writes.UPDATE_ATTEMPTS):
        current, revision = await objects.get(ctx.namespace, ctx.name)
        desired = mutate(json_copy(current))
        if ctx.dry_run:
            return desired
        try:
            return await objects.update(ctx.namespace, ctx.name, desired, revision)
        except errors.ApiError as err:
            if err.reason != "Conflict":
                raise
    raise errors.conflict(ctx.resource, ctx.name)


# --- pods/eviction -----------------------------------------------------------------------


async def evict(ctx: Context) -> web.StreamResponse:
    """Delete a pod unless a PodDisruptionBudget forbids it (429, as upstream)."""
    eviction = await read_object(ctx.request, ctx.max_body)
    pod, _ = await ctx.objects.get(ctx.namespace, ctx.name)
    if not pods.is_terminal(pod):
        await _consume_disruption(ctx, pod)
    options = eviction.get("deleteOptions") or {}
    opts = DeleteOptions(propagation_policy=options.get("propagationPolicy"),
                         grace_period_seconds=options.get("gracePeriodSeconds"),
                         uid=(options.get("preconditions") or {}).get("uid"),
                         resource_version=(options.get("preconditions") or {})
                         .get("resourceVersion"),
                         dry_run=ctx.dry_run or options.get("dryRun") == ["All"])
    sub = copy.copy(ctx)
    sub.subresource = ""
    await delete_object(sub, ctx.name, opts)
    return _success(201)


async def _consume_disruption(ctx: Context, pod: dict) -> None:
    budgets = [c.obj for c in ctx.server.watch_cache.list(PDBS, ctx.namespace)
               if LabelSelector.from_dict((c.obj.get("spec") or {}).get("selector"))
               .matches(meta.labels(pod)) and (c.obj.get("spec") or {}).get("selector")]
    if not budgets:
        return
    if len(budgets) > 1:
        raise errors.ApiError(500, "InternalError", "This pod has more than one "
                              "PodDisruptionBudget, which the eviction subresource does not "
                              "support.")
    budget = budgets[0]
    allowed = int((budget.get("status") or {}).get("disruptionsAllowed") or 0)
    if allowed <= 0:
        err = errors.too_many_requests("Cannot evict pod as it would violate the pod's "
                                       "disruption budget.", 10)
        err.details = {"causes": [{"reason": "DisruptionBudget", "message":
                                   f"The disruption budget {meta.name(budget)} needs "
                                   f"{(budget.get('status') or {}).get('desiredHealthy', 0)} "
                                   f"healthy pods and has "
                                   f"{(budget.get('status') or {}).get('currentHealthy', 0)} "
                                   f"currently"}]}
        raise err
    if ctx.dry_run:
        return
    objects = Objects(ctx.server.store, PDBS)
    current, revision = await objects.get(ctx.namespace, meta.name(budget))
    status = current.setdefault("status", {})
    status["disruptionsAllowed"] = max(int(status.get("disruptionsAllowed") or 0) - 1, 0)
    status.setdefault("disruptedPods", {})[meta.name(pod)] = meta.now()
    await objects.update(ctx.namespace, meta.name(budget), current, revision)


# --- serviceaccounts/token ---------------------------------------------------------------


async def token_request(ctx: Context) -> web.StreamResponse:
    """A TokenRequest: a signed, bound service account JWT."""
    request = await read_object(ctx.request, ctx.max_body)
    sa, _ = await ctx.objects.get(ctx.namespace, ctx.name)
    spec = request.get("spec") or {}
    expiration = int(spec.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS)
    if expiration < MIN_TOKEN_SECONDS:
        raise errors.invalid("TokenRequest", ctx.name, [errors.Cause.invalid(
            "spec.expirationSeconds", expiration, "may not specify a duration less than 10 "
            "minutes")], group="authentication.k8s.io")
    audiences = list(spec.get("audiences") or [ctx.server.config.service_account_issuer])
    bound = spec.get("boundObjectRef")
    now = int(time.time())
    token = ctx.server.token_signer.sign_service_account(
        namespace=ctx.namespace, name=ctx.name, uid=meta.uid(sa), audiences=audiences,
        issued_at=now, expires_at=now + expiration, bound=bound)
    out = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
           "metadata": {"name": ctx.name, "namespace": ctx.namespace,
                        "creationTimestamp": None},
           "spec": {"audiences": audiences, "expirationSeconds": expiration,
                    "boundObjectRef": bound},
           "status": {"token": token, "expirationTimestamp": time.strftime(
               "%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + expiration))}}
    return json_response(orjson.dumps(out), 201)
