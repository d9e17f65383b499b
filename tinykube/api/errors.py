"""API errors as upstream's ``meta/v1 Status`` (k8s.io/apimachinery/pkg/api/errors).

Server code raises :class:`ApiError`; the API server renders ``.status()`` as the response
body, and the client rebuilds the same error with :meth:`ApiError.from_status`. Messages,
reasons and details follow upstream word for word, because kubectl prints them verbatim
and scripts match on them.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, Iterator, NamedTuple, Protocol, Sequence


class _Resource(Protocol):
    group: str
    resource: str
    kind: str


def _group_resource(res: _Resource | str, group: str = "") -> tuple[str, str]:
    if isinstance(res, str):
        return group, res
    return res.group, res.resource


def _group_kind(kind: _Resource | str, group: str = "") -> tuple[str, str]:
    if isinstance(kind, str):
        return group, kind
    return kind.group, kind.kind


def qualified(group: str, name: str) -> str:
    """``schema.GroupResource.String()``: ``pods``, ``deployments.apps``."""
    return f"{name}.{group}" if group else name


# --- field errors (k8s.io/apimachinery/pkg/util/validation/field) ---------------------

# Cause reasons (metav1.CauseType) keyed by field.ErrorType's string.
CAUSE_REASONS = {
    "Not found": "FieldValueNotFound",
    "Required value": "FieldValueRequired",
    "Duplicate value": "FieldValueDuplicate",
    "Invalid value": "FieldValueInvalid",
    "Unsupported value": "FieldValueNotSupported",
    "Forbidden": "FieldValueForbidden",
    "Too long": "FieldValueTooLong",
    "Too many": "FieldValueTooMany",
    "Internal error": "InternalError",
    "Invalid type": "FieldValueTypeInvalid",
}


def go_repr(value: Any) -> str:
    """Render a bad value as Go's ``%#v`` does for the common JSON types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class Cause(NamedTuple):
    """One field error: ``reason`` is the metav1 CauseType, ``message`` the error body."""

    field: str
    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    @staticmethod
    def _build(error_type: str, field: str, body: str, detail: str) -> "Cause":
        message = f"{body}: {detail}" if detail else body
        return Cause(field, CAUSE_REASONS[error_type], message)

    @classmethod
    def required(cls, field: str, detail: str = "") -> "Cause":
        return cls._build("Required value", field, "Required value", detail)

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str = "") -> "Cause":
        return cls._build("Invalid value", field, f"Invalid value: {go_repr(value)}", detail)

    @classmethod
    def not_supported(cls, field: str, value: Any, valid: Sequence[str]) -> "Cause":
        detail = "supported values: " + ", ".join(go_repr(v) for v in valid) if valid else ""
        return cls._build("Unsupported value", field,
                         f"Unsupported value: {go_repr(value)}", detail)

    @classmethod
    def duplicate(cls, field: str, value: Any) -> "Cause":
        return cls._build("Duplicate value", field, f"Duplicate value: {go_repr(value)}", "")

    @classmethod
    def not_found(cls, field: str, value: Any) -> "Cause":
        return cls._build("Not found", field, f"Not found: {go_repr(value)}", "")

    @classmethod
    def forbidden(cls, field: str, detail: str) -> "Cause":
        return cls._build("Forbidden", field, "Forbidden", detail)

    @classmethod
    def too_long(cls, field: str, max_length: int) -> "Cause":
        return cls._build("Too long", field, "Too long",
                         f"must have at most {max_length} bytes")

    @classmethod
    def too_many(cls, field: str, actual: int, max_items: int) -> "Cause":
        return cls._build("Too many", field, f"Too many: {actual}",
                         f"must have at most {max_items} items")

    @classmethod
    def type_invalid(cls, field: str, value: Any, detail: str) -> "Cause":
        return cls._build("Invalid type", field, f"Invalid value: {go_repr(value)}", detail)

    @classmethod
    def internal(cls, field: str, detail: str) -> "Cause":
        return cls._build("Internal error", field, "Internal error", detail)


def aggregate_message(causes: Sequence[Cause]) -> str:
    """``utilerrors.NewAggregate(errs).Error()``: one error bare, several in brackets."""
    texts: list[str] = []
    for cause in causes:
        text = str(cause)
        if text not in texts:
            texts.append(text)
    if len(texts) == 1:
        return texts[0]
    return "[" + ", ".join(texts) + "]"


# --- the error type ------------------------------------------------------------------


class ApiError(Exception):
    """A failed API call, carrying everything of the ``Status`` the server answers."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list((self.details or {}).get("causes") or [])

    def status(self) -> dict[str, Any]:
        """The ``meta/v1 Status`` body for this error."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            out["details"] = self.details
        out["code"] = self.code
        return out

    @classmethod
    def from_status(cls, status: dict[str, Any], code: int | None = None) -> "ApiError":
        """Rebuild the error from a Status body (client side); ``code`` is the HTTP status."""
        if not isinstance(status, dict):
            status = {}
        return cls(
            int(status.get("code") or code or 500),
            status.get("reason") or "",
            status.get("message") or "",
            status.get("details") or None,
        )


def _details(name: str, group: str, kind: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    details.update({k: v for k, v in extra.items() if v})
    return details


# --- constructors, one per upstream errors.NewXxx ------------------------------------


def not_found(res: _Resource | str, name: str, group: str = "") -> ApiError:
    g, r = _group_resource(res, group)
    return ApiError(404, "NotFound", f'{qualified(g, r)} "{name}" not found',
                    _details(name, g, r))


def already_exists(res: _Resource | str, name: str, group: str = "") -> ApiError:
    g, r = _group_resource(res, group)
    return ApiError(409, "AlreadyExists", f'{qualified(g, r)} "{name}" already exists',
                    _details(name, g, r))


OBJECT_MODIFIED = ("the object has been modified; please apply your changes to the latest "
                   "version and try again")


def conflict(res: _Resource | str, name: str, detail: str = OBJECT_MODIFIED,
             group: str = "") -> ApiError:
    g, r = _group_resource(res, group)
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {qualified(g, r)} "{name}": {detail}',
                    _details(name, g, r))


def invalid(kind: _Resource | str, name: str, causes: Sequence[Cause],
            group: str = "") -> ApiError:
    """``errors.NewInvalid``: 422 ``<Kind> "<name>" is invalid: <field errors>``."""
    g, k = _group_kind(kind, group)
    details = _details(name, g, k)
    details["causes"] = [c.to_dict() for c in causes]
    return ApiError(422, "Invalid",
                    f'{qualified(g, k)} "{name}" is invalid: {aggregate_message(causes)}',
                    details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized(message: str = "Unauthorized") -> ApiError:
    return ApiError(401, "Unauthorized", message)


def forbidden(res: _Resource | str | None, name: str, detail: str, group: str = "") -> ApiError:
    """``errors.NewForbidden``; ``res`` None gives the bare ``forbidden: ...`` form."""
    if res is None or res == "":
        return ApiError(403, "Forbidden", f"forbidden: {detail}", _details(name, "", ""))
    g, r = _group_resource(res, group)
    what = qualified(g, r)
    message = (f'{what} "{name}" is forbidden: {detail}' if name
               else f"{what} is forbidden: {detail}")
    return ApiError(403, "Forbidden", message, _details(name, g, r))


def namespace_terminating(res: _Resource | str, name: str, namespace: str,
                          group: str = "") -> ApiError:
    """The NamespaceLifecycle admission refusal while a namespace is being deleted."""
    detail = (f"unable to create new content in namespace {namespace} "
              f"because it is being terminated")
    err = forbidden(res, name, detail, group)
    details = dict(err.details or {})
    details["causes"] = [{"reason": "NamespaceTerminating", "message": detail,
                          "field": "metadata.namespace"}]
    err.details = details
    return err


def gone_expired(message: str) -> ApiError:
    """``errors.NewResourceExpired``: 410 Expired, e.g. ``too old resource version: 5 (10)``."""
    return ApiError(410, "Expired", message)


def too_old_resource_version(requested: int | str, oldest: int | str) -> ApiError:
    return gone_expired(f"too old resource version: {requested} ({oldest})")


def gone(message: str) -> ApiError:
    return ApiError(410, "Gone", message)


def method_not_supported(res: _Resource | str, action: str, group: str = "") -> ApiError:
    g, r = _group_resource(res, group)
    return ApiError(405, "MethodNotAllowed",
                    f'{action} is not supported on resources of kind "{qualified(g, r)}"',
                    _details("", g, r))


def not_acceptable(accepted: Sequence[str]) -> ApiError:
    return ApiError(406, "NotAcceptable",
                    "only the following media types are accepted: " + ", ".join(accepted))


def unsupported_media_type(content_type: str, accepted: Sequence[str] = ()) -> ApiError:
    if accepted:
        message = ("the body of the request was in an unknown format - accepted media types "
                   f"include: {', '.join(accepted)}")
    else:
        message = f"unsupported media type {content_type!r}"
    return ApiError(415, "UnsupportedMediaType", message)


def request_entity_too_large(message: str) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def too_many_requests(message: str = "Too many requests, please try again later.",
                      retry_after_seconds: int = 1) -> ApiError:
    return ApiError(429, "TooManyRequests", message,
                    {"retryAfterSeconds": retry_after_seconds})


def internal_error(detail: str | BaseException) -> ApiError:
    text = str(detail)
    return ApiError(500, "InternalError", f"Internal error occurred: {text}",
                    {"causes": [{"message": text}]})


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", message)


def timeout(message: str, retry_after_seconds: int = 0) -> ApiError:
    """``errors.NewTimeoutError``: 504 ``Timeout: <message>``."""
    details = {"retryAfterSeconds": retry_after_seconds} if retry_after_seconds else None
    return ApiError(504, "Timeout", f"Timeout: {message}", details)


def server_timeout(res: _Resource | str, operation: str, retry_after_seconds: int = 0,
                   group: str = "") -> ApiError:
    g, r = _group_resource(res, group)
    return ApiError(500, "ServerTimeout",
                    f"The {operation} operation against {qualified(g, r)} could not be "
                    f"completed at this time, please try again.",
                    _details("", g, r, retryAfterSeconds=retry_after_seconds))


def is_not_found(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.code == 404


@contextlib.contextmanager
def ignore_not_found() -> Iterator[None]:
    """Drop a 404 raised in the block: for a level-triggered controller, an object already
    gone when it deletes it or writes its status is done, not a failure."""
    try:
        yield
    except ApiError as err:
        if err.code != 404:
            raise


def is_conflict(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.reason == "Conflict"


def is_already_exists(err: BaseException) -> bool:
    return isinstance(err, ApiError) and err.reason == "AlreadyExists"
