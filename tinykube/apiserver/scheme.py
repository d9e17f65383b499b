"""The API server's seam to ``tinykube.api``: defaulting, validation, patches, apply.

One place names the pure functions of the api package the write path calls, so the
handlers read as the pipeline they are.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Any, Iterator

from tinykube.api import decoding, defaults, errors, patch
from tinykube.api.kinds import ResourceInfo


def _optional(module: str) -> Any | None:
    """An api module that may not be part of this build; only its own absence is tolerated."""
    name = f"tinykube.api.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def check_types(info: ResourceInfo, obj: dict) -> None:
    """400, as Go's decoder answers, when a value has a type the schema does not allow."""
    err = decoding.decode_error(info, obj)
    if err is not None:
        raise err


@contextmanager
def decode_errors(info: ResourceInfo) -> Iterator[None]:
    """A value that does not parse (a bad quantity) is what upstream's decoder refuses: 400."""
    try:
        yield
    except ValueError as exc:
        raise errors.bad_request(f'{info.kind} in version "{info.version}" cannot be handled '
                                 f"as a {info.kind}: {exc}") from None


def apply_defaults(info: ResourceInfo, obj: dict) -> None:
    with decode_errors(info):
        defaults.apply_defaults(info, obj)


def validate(info: ResourceInfo, obj: dict, old: dict | None) -> None:
    """422 Invalid with upstream's field causes when the object is not valid."""
    validation = _optional("validation")
    if validation is None:
        return
    if old is None:
        causes = validation.validate_create(info, obj)
    else:
        causes = validation.validate_update(info, obj, old)
    if causes:
        raise errors.invalid(info, (obj.get("metadata") or {}).get("name") or "", causes)


def apply_patch(info: ResourceInfo, patch_type: str, current: dict, document: Any,
                owned: bool = False) -> dict:
    """``owned``: ``current`` is a private copy the patch may change in place."""
    if patch_type == "json":
        out = patch.json_patch(current, document, owned=owned)
    elif patch_type == "merge":
        out = patch.merge_patch(current, document, owned=owned)
    elif patch_type == "strategic":
        out = patch.strategic_merge_patch(info, current, document, owned=owned)
    else:
        raise errors.unsupported_media_type(patch_type)
    if not isinstance(out, dict):
        raise errors.ApiError(422, "Invalid", "the patched object is not a JSON object")
    return out


def server_side_apply(info: ResourceInfo, current: dict | None, applied: dict, manager: str,
                      force: bool) -> dict:
    """The object after ``manager`` applies ``applied`` (409 on ownership conflicts)."""
    apply = _optional("apply")
    if apply is None:
        raise errors.ApiError(415, "UnsupportedMediaType",
                              "server-side apply is not available in this server")
    return apply.apply(info, current, applied, manager, force=force)


def record_managed_fields(info: ResourceInfo, new: dict, old: dict | None, manager: str,
                          operation: str, subresource: str) -> None:
    """Track which manager set which fields (managedFields), as upstream records updates."""
    apply = _optional("apply")
    if apply is None:
        return
    apply.record_update(info, old, new, manager, operation=operation, subresource=subresource)
