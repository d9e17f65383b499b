"""events.k8s.io/v1 Events: a second view of the core/v1 Events in the same storage.

As in kube-apiserver, both versions live under ``/registry/events/``; objects are stored
in the core shape and converted field by field at the edge of each request.
"""

from __future__ import annotations

from typing import Any

# events.k8s.io/v1 field -> core/v1 field
RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related",
        "type")
API_VERSION = "events.k8s.io/v1"


def to_v1(core: dict[str, Any]) -> dict[str, Any]:
    """A stored core/v1 Event as events.k8s.io/v1 shows it."""
    out: dict[str, Any] = {"kind": "Event", "apiVersion": API_VERSION}
    for key in SAME:
        if key in core:
            out[key] = core[key]
    for new, old in RENAMED.items():
        if old in core:
            out[new] = core[old]
    if out.get("eventTime") is None:
        out["eventTime"] = None
    return out


def to_core(v1: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 body in the core/v1 shape it is stored in."""
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "v1"}
    for key in SAME:
        if key in v1:
            out[key] = v1[key]
    for new, old in RENAMED.items():
        if new in v1:
            out[old] = v1[new]
    if not out.get("reportingComponent") and isinstance(out.get("source"), dict):
        out["reportingComponent"] = out["source"].get("component", "")
    return out
