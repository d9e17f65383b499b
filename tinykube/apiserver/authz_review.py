"""Access reviews: Self/SubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview.

These objects are never stored: a create asks ``server.authorizer`` the question the
object describes and answers with the object plus its ``status``. ``kubectl auth can-i``
sends a SelfSubjectAccessReview for the caller (``--list``: a SelfSubjectRulesReview);
``kubectl auth whoami`` a SelfSubjectReview, which reports what authentication made of
the caller.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson
from aiohttp import web

from tinykube.api import errors, meta
from tinykube.apiserver import protobuf
from tinykube.apiserver.authz import AlwaysAllow, AlwaysDeny
from tinykube.apiserver.request import REQUEST_INFO, RequestInfo, UserInfo

AUTHORIZATION_GROUP = "authorization.k8s.io"
AUTHENTICATION_GROUP = "authentication.k8s.io"
# SelfSubjectReview went v1alpha1 (1.26) -> v1beta1 (1.27) -> v1 (1.28); kubectl tries
# the newest first and falls back, so every version is answered.
SELF_SUBJECT_REVIEW_VERSIONS = ("v1", "v1beta1", "v1alpha1")


def _invalid(kind: str, field: str, value: Any, detail: str) -> errors.ApiError:
    return errors.invalid(kind, "", [errors.Cause.invalid(field, value, detail)],
                          group=AUTHORIZATION_GROUP)


def _decode(raw: bytes, kind: str, api_version: str) -> dict:
    """The review in the body: JSON, or protobuf as newer kubectl's typed clients send it."""
    if raw.startswith(protobuf.MAGIC):
        try:
            obj = protobuf.decode(raw)
        except ValueError as err:  # ProtobufError and bad UTF-8 included
            raise errors.bad_request(f"unable to decode the protobuf body: {err}") from None
        raw = orjson.dumps(obj)
    try:
        obj = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError as err:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {err}") from None
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request was empty"
                                 if obj is None else "the body must be a JSON object")
    if obj.get("kind", kind) != kind:
        raise errors.bad_request(f'the kind in the body ({obj.get("kind")}) does not match '
                                 f"the URL ({kind})")
    if obj.get("apiVersion", api_version) != api_version:
        raise errors.bad_request(f'the API version in the body ({obj.get("apiVersion")}) '
                                 f"does not match the URL ({api_version})")
    return obj


def attributes_info(spec: dict, user: UserInfo, kind: str) -> RequestInfo:
    """The RequestInfo an authorizer would see for the attributes in a review's spec."""
    res = spec.get("resourceAttributes")
    non_res = spec.get("nonResourceAttributes")
    if bool(res) == bool(non_res):
        raise _invalid(kind, "spec.resourceAttributes", None if not res else res,
                       "exactly one of nonResourceAttributes or resourceAttributes must be "
                       "specified")
    if non_res:
        if not isinstance(non_res, dict):
            raise _invalid(kind, "spec.nonResourceAttributes", non_res, "must be an object")
        return RequestInfo(verb=str(non_res.get("verb", "")), path=str(non_res.get("path", "")),
                           user=user)
    if not isinstance(res, dict):
        raise _invalid(kind, "spec.resourceAttributes", res, "must be an object")
    group = str(res.get("group", ""))
    version = str(res.get("version", ""))
    return RequestInfo(
        verb=str(res.get("verb", "")), path="", is_resource_request=True,
        api_prefix="apis" if group else "api", api_group=group, api_version=version,
        resource=str(res.get("resource", "")), subresource=str(res.get("subresource", "")),
        namespace=str(res.get("namespace", "")), name=str(res.get("name", "")), user=user)


def user_from_spec(spec: dict) -> UserInfo:
    """A SubjectAccessReview names its subject in spec.user/groups/uid/extra."""
    if not spec.get("user") and not spec.get("groups"):
        raise _invalid("SubjectAccessReview", "spec.user", "",
                       "at least one of user or group must be specified")
    extra = spec.get("extra") or {}
    return UserInfo(str(spec.get("user", "")), tuple(spec.get("groups") or ()),
                    str(spec.get("uid", "")), {k: tuple(v) for k, v in extra.items()})


async def review_status(server: Any, info: RequestInfo) -> dict:
    """``SubjectAccessReviewStatus`` from the server's authorizer chain."""
    result = await server.authorizer.authorize(info)
    # ``denied`` is left out: the chain cannot tell an explicit deny from "no opinion".
    status: dict[str, Any] = {"allowed": result.allowed}
    if result.reason:
        status["reason"] = result.reason
    return status


# -- rules reviews (kubectl auth can-i --list) ---------------------------------------------

ALL_RESOURCES = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}
ALL_NON_RESOURCES = {"verbs": ["*"], "nonResourceURLs": ["*"]}


def rules_status(server: Any, user: UserInfo, namespace: str) -> dict:
    """``SubjectRulesReviewStatus``: every authorizer's rules for the user, concatenated.

    AlwaysAllow grants everything and AlwaysDeny nothing, as upstream's; another
    authorizer contributes through ``rules_for(user, namespace) -> (resource rules,
    non-resource rules, incomplete)``, and one without it makes the answer incomplete.
    """
    chain = getattr(server.authorizer, "authorizers", [server.authorizer])
    resource_rules: list[dict] = []
    non_resource_rules: list[dict] = []
    incomplete = False
    errors_seen: list[str] = []
    for authorizer in chain:
        if isinstance(authorizer, AlwaysAllow):
            resource_rules.append(dict(ALL_RESOURCES))
            non_resource_rules.append(dict(ALL_NON_RESOURCES))
        elif isinstance(authorizer, AlwaysDeny):
            continue
        elif hasattr(authorizer, "rules_for"):
            res, non_res, partial = authorizer.rules_for(user, namespace)
            resource_rules += res
            non_resource_rules += non_res
            incomplete = incomplete or partial
        else:
            incomplete = True
            errors_seen.append(f"{type(authorizer).__name__} does not list its rules")
    status: dict[str, Any] = {"resourceRules": resource_rules,
                              "nonResourceRules": non_resource_rules,
                              "incomplete": incomplete}
    if errors_seen:
        status["evaluationError"] = "; ".join(errors_seen)
    return status


def self_subject_rules_review(server: Any) -> Callable:
    kind, api_version = "SelfSubjectRulesReview", f"{AUTHORIZATION_GROUP}/v1"

    async def handle(request: web.Request) -> web.Response:
        obj = _decode(await request.read(), kind, api_version)
        spec = obj.get("spec") or {}
        namespace = spec.get("namespace") or ""
        if not namespace:
            raise _invalid(kind, "spec.namespace", "", "namespace is required")
        return _answer({"kind": kind, "apiVersion": api_version, **obj},
                       rules_status(server, _caller(request), str(namespace)))

    return handle


def _answer(obj: dict, status: dict) -> web.Response:
    out = {**obj, "metadata": {**(obj.get("metadata") or {}), "creationTimestamp": None},
           "status": status}
    return web.Response(status=201, body=orjson.dumps(out), content_type="application/json")


def _caller(request: web.Request) -> UserInfo:
    info: RequestInfo | None = request.get(REQUEST_INFO)
    return info.user if info is not None else UserInfo("system:anonymous")


def _access_review(server: Any, kind: str,
                   subject: Callable[[web.Request, dict], UserInfo]) -> Callable:
    """The access review both kinds answer; only whose access it is asked about differs."""
    api_version = f"{AUTHORIZATION_GROUP}/v1"

    async def handle(request: web.Request) -> web.Response:
        obj = _decode(await request.read(), kind, api_version)
        spec = obj.get("spec") or {}
        info = attributes_info(spec, subject(request, spec), kind)
        return _answer({"kind": kind, "apiVersion": api_version, **obj},
                       await review_status(server, info))

    return handle


def self_subject_access_review(server: Any) -> Callable:
    """May the caller do this?"""
    return _access_review(server, "SelfSubjectAccessReview",
                          lambda request, spec: _caller(request))


def subject_access_review(server: Any) -> Callable:
    """May the user the spec names do this?"""
    return _access_review(server, "SubjectAccessReview",
                          lambda request, spec: user_from_spec(spec))


def self_subject_review(version: str) -> Callable:
    kind, api_version = "SelfSubjectReview", f"{AUTHENTICATION_GROUP}/{version}"

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        obj = _decode(raw, kind, api_version) if raw.strip() else {}
        user = _caller(request)
        user_info: dict[str, Any] = {"username": user.name}
        if user.uid:
            user_info["uid"] = user.uid
        if user.groups:
            user_info["groups"] = list(user.groups)
        if user.extra:
            user_info["extra"] = {k: list(v) for k, v in user.extra.items()}
        out = {"kind": kind, "apiVersion": api_version,
               "metadata": {**(obj.get("metadata") or {}), "creationTimestamp": meta.now()},
               "status": {"userInfo": user_info}}
        return web.Response(status=201, body=orjson.dumps(out), content_type="application/json")

    return handle


def setup(app: web.Application, server: Any) -> None:
    """Register the create endpoints (before the generic resource routes)."""
    base = f"/apis/{AUTHORIZATION_GROUP}/v1"
    app.router.add_post(f"{base}/selfsubjectaccessreviews", self_subject_access_review(server))
    app.router.add_post(f"{base}/subjectaccessreviews", subject_access_review(server))
    app.router.add_post(f"{base}/selfsubjectrulesreviews", self_subject_rules_review(server))
    for version in SELF_SUBJECT_REVIEW_VERSIONS:
        app.router.add_post(f"/apis/{AUTHENTICATION_GROUP}/{version}/selfsubjectreviews",
                            self_subject_review(version))
