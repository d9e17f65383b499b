"""Accumulating Service and EndpointSlice changes between syncs (upstream's change trackers).

Informer handlers only record the newest object per key and mark its service dirty; the
proxier's sync calls `apply`, which folds the pending changes into the `Snapshot` and
returns the ServicePortNames whose rules must be recomputed. Nothing else is recomputed,
which is what makes a sync with one changed service cheap among ten thousand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tinykube.api import meta
from tinykube.proxy import conntrack
from tinykube.proxy.model import (
    Endpoint,
    ServicePort,
    Snapshot,
    endpoints_for,
    merge_slices,
    object_key,
    service_ports,
    slice_service_key,
)

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


@dataclass
class AppliedChanges:
    """What one `apply` changed: ServicePortNames, and when the oldest change was triggered."""

    port_keys: set[str] = field(default_factory=set)
    service_changes: int = 0
    endpoint_changes: int = 0
    trigger_times: list[float] = field(default_factory=list)


def _trigger_time(obj: dict[str, Any]) -> float | None:
    """The EndpointSlice's last-change-trigger-time annotation as a UNIX time."""
    value = meta.annotations(obj).get(TRIGGER_TIME_ANNOTATION)
    if not value:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class ChangeTracker:
    """Holds the latest Services and EndpointSlices and which services changed since `apply`."""

    def __init__(self) -> None:
        self._services: dict[str, dict[str, Any]] = {}
        self._slices: dict[str, dict[str, dict[str, Any]]] = {}  # svc key -> slice name -> obj
        self._slice_owner: dict[str, str] = {}  # slice key -> svc key
        self._dirty: set[str] = set()
        self._port_keys: dict[str, list[str]] = {}  # svc key -> its ServicePortNames in the snapshot
        self._service_changes = 0
        self._endpoint_changes = 0
        self._trigger_times: list[float] = []
        self.oldest_pending: float | None = None  # monotonic time of the oldest unsynced change

    @property
    def pending(self) -> bool:
        return bool(self._dirty)

    def _mark(self, svc_key: str) -> None:
        self._dirty.add(svc_key)
        if self.oldest_pending is None:
            self.oldest_pending = time.monotonic()

    # Informer handlers: record and mark only.
    def service_updated(self, svc: dict[str, Any] | None, key: str | None = None) -> None:
        """Record a Service add/update (`svc`) or delete (`svc` None with `key`)."""
        key = key or object_key(svc or {})
        if svc is None:
            self._services.pop(key, None)
        else:
            self._services[key] = svc
        self._service_changes += 1
        self._mark(key)

    def slice_updated(self, slice_obj: dict[str, Any], deleted: bool = False) -> None:
        """Record an EndpointSlice add/update or delete."""
        slice_key = object_key(slice_obj)
        old_owner = self._slice_owner.pop(slice_key, None)
        if old_owner is not None:
            self._slices.get(old_owner, {}).pop(slice_key, None)
            self._mark(old_owner)
        owner = slice_service_key(slice_obj)
        if not deleted and owner is not None:
            self._slices.setdefault(owner, {})[slice_key] = slice_obj
            self._slice_owner[slice_key] = owner
            self._mark(owner)
        self._endpoint_changes += 1
        trigger = _trigger_time(slice_obj)
        self._trigger_times.append(trigger if trigger is not None else time.time())

    def apply(self, snapshot: Snapshot) -> AppliedChanges:
        """Fold pending changes into `snapshot`; returns the ServicePortNames affected."""
        result = AppliedChanges(
            service_changes=self._service_changes,
            endpoint_changes=self._endpoint_changes,
            trigger_times=self._trigger_times,
        )
        for svc_key in self._dirty:
            for port_key in self._port_keys.pop(svc_key, ()):
                snapshot.services.pop(port_key, None)
                snapshot.endpoints.pop(port_key, None)
                result.port_keys.add(port_key)
            svc = self._services.get(svc_key)
            if svc is None:
                continue
            merged = merge_slices(svc_key, self._slices.get(svc_key, {}).values())
            keys = self._port_keys[svc_key] = []
            for port in service_ports(svc):
                snapshot.services[port.key] = port
                snapshot.endpoints[port.key] = endpoints_for(port, merged)
                keys.append(port.key)
                result.port_keys.add(port.key)
        self._dirty = set()
        self._service_changes = self._endpoint_changes = 0
        self._trigger_times = []
        self.oldest_pending = None
        return result


Piece = TypeVar("Piece")


@dataclass
class Fold(Generic[Piece]):
    """One sync's pending changes folded into the snapshot, and what they replaced."""

    changes: AppliedChanges
    keys: set[str]  # the ServicePortNames whose pieces were recomputed
    old_pieces: dict[str, Piece]
    old_services: dict[str, ServicePort]
    old_endpoints: dict[str, tuple[Endpoint, ...]]

    def stale_flows(self, snapshot: Snapshot) -> conntrack.StaleFlows:
        """The UDP flows the changed service ports left stale."""
        return conntrack.flows_for(self.changes.port_keys, snapshot, self.old_services,
                                   self.old_endpoints)


def fold_changes(tracker: ChangeTracker, snapshot: Snapshot, pieces: dict[str, Piece],
                 full: bool, compute: Callable[[set[str]], dict[str, Piece]]) -> Fold[Piece]:
    """Apply ``tracker`` to ``snapshot`` and recompute, in ``pieces``, the rules of the
    changed service ports (of every one on a full sync, which also drops the others)."""
    old_services, old_endpoints = dict(snapshot.services), dict(snapshot.endpoints)
    changes = tracker.apply(snapshot)
    keys = set(snapshot.services) if full else changes.port_keys
    old_pieces = {k: pieces.pop(k) for k in keys if k in pieces}
    if full:
        pieces.clear()
    pieces.update(compute(keys))
    return Fold(changes, keys, old_pieces, old_services, old_endpoints)
