"""Selectors and continue tokens: how a list or watch narrows and pages its results."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Callable

import orjson

from tinykube.api import errors, meta
from tinykube.api.selectors import FieldSelector, LabelSelector
from tinykube.apiserver.registry.base import Strategy

CONTINUE_VERSION = "meta.k8s.io/v1"


@dataclass(frozen=True)
class Selection:
    """The label and field selectors of a request, compiled into one predicate."""

    labels: LabelSelector
    fields: FieldSelector
    strategy: Strategy

    @classmethod
    def parse(cls, strategy: Strategy, label_selector: str | None,
              field_selector: str | None) -> "Selection":
        try:
            labels = LabelSelector.parse(label_selector or "")
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        try:
            fields = FieldSelector.parse(field_selector or "")
        except ValueError as exc:
            raise errors.bad_request(str(exc)) from None
        supported = strategy.supported_fields()
        for name in sorted(fields.fields()):
            if name not in supported:
                raise errors.bad_request(f'field label not supported: {name}')
        return cls(labels, fields, strategy)

    @property
    def empty(self) -> bool:
        return self.labels.empty and self.fields.empty

    def predicate(self) -> Callable[[dict], bool] | None:
        """None when everything matches (the fast path)."""
        if self.empty:
            return None
        labels, fields, strategy = self.labels, self.fields, self.strategy
        if fields.empty:
            return lambda obj: labels.matches(meta.labels(obj))
        return lambda obj: (labels.matches(meta.labels(obj))
                            and fields.matches(strategy.field_values(obj)))


@dataclass(frozen=True)
class ContinueToken:
    """upstream's opaque token: the list's revision and the key to resume after."""

    revision: int
    start: str  # key relative to the listed prefix, resumed strictly after

    def encode(self) -> str:
        doc = {"v": CONTINUE_VERSION, "rv": self.revision, "start": self.start + "\x00"}
        return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "ContinueToken":
        try:
            padded = token + "=" * (-len(token) % 4)
            doc = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
            if doc.get("v") != CONTINUE_VERSION or not isinstance(doc.get("rv"), int):
                raise ValueError
            start = str(doc.get("start") or "")
        except (ValueError, binascii.Error, orjson.JSONDecodeError, AttributeError):
            raise errors.bad_request("continue key is not valid: incorrect encoded start "
                                     "resourceVersion (version meta.k8s.io/v1)") from None
        if start.endswith("\x00"):
            start = start[:-1]
        if doc["rv"] <= 0 or ".." in start or start.startswith("/"):
            raise errors.bad_request("continue key is not valid: invalid start")
        return cls(doc["rv"], start)


CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list.")
