"""The store interface: etcd's data model as kube-apiserver uses it.

A store is a revisioned key-value map. Every write bumps one global revision; each key
remembers the revision that created it and the one that last modified it. Reads can be
served at a past revision until it is compacted; watches deliver every change after a
revision, in order. The API server's ``resourceVersion`` is the ``mod_revision`` of the
object (for a list: the revision the list was read at).

Expected outcomes are exceptions of the classes below, named after etcd's errors, so that
the API server can translate them into 409/404/410 without inspecting backend details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One key's value as of some revision."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One change: a PUT (create or update) or a DELETE, at ``kv.mod_revision``.

    For a DELETE, ``kv`` carries the key with the deletion's revision and an empty value;
    ``prev_kv`` always holds the value before the change (None for a create).
    """

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.prev_kv is None


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of a prefix listing, read at ``revision``.

    ``more`` says whether keys after the last item remain; pass the last item's key as
    ``start_after`` (with the same ``revision``) to read the next page.
    """

    items: list[KeyValue]
    revision: int
    more: bool


class StoreError(Exception):
    """Base class of every store error."""


class KeyExistsError(StoreError):
    """create() of a key that exists."""

    def __init__(self, key: str):
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    """update()/delete() of a key that does not exist."""

    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StoreError):
    """update()/delete() whose expected mod revision is not the key's current one.

    ``current`` is the key's current value so that callers can retry without a read.
    """

    def __init__(self, key: str, current: KeyValue | None):
        super().__init__(f"conflict on {key}")
        self.key = key
        self.current = current


class CompactedError(StoreError):
    """A read or watch at a revision that compaction has already removed ("too old")."""

    def __init__(self, requested: int, compact_revision: int):
        super().__init__(
            f"required revision {requested} has been compacted (compacted to {compact_revision})"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    """A read at a revision the store has not reached yet."""

    def __init__(self, requested: int, current: int):
        super().__init__(f"required revision {requested} is a future revision (current {current})")
        self.requested = requested
        self.current = current


class UnavailableError(StoreError):
    """The backend cannot be reached (etcd down, database closed): fail fast, retry later."""


#: etcd's default ``--max-request-bytes``; both backends refuse larger values alike.
MAX_VALUE_BYTES = 1_572_864


class ValueTooLargeError(StoreError):
    """A value over ``MAX_VALUE_BYTES``; kube-apiserver answers 413 RequestEntityTooLarge."""

    def __init__(self, key: str, size: int):
        super().__init__("etcdserver: request is too large")
        self.key = key
        self.size = size


class Watch(Protocol):
    """A stream of change batches; each batch is in revision order, batches too.

    Iterating yields lists of events (all events of one revision, or a run of consecutive
    revisions). ``close()`` ends the iteration. A watch whose start revision was compacted
    raises CompactedError from the first ``__anext__``.
    """

    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    async def __anext__(self) -> list[Event]: ...

    async def close(self) -> None: ...


class Store(Protocol):
    """What the API server needs from etcd. Every write returns its new revision."""

    async def current_revision(self) -> int:
        """The newest revision (0 for an empty store)."""

    async def get(self, key: str, revision: int | None = None) -> tuple[int, KeyValue | None]:
        """(read revision, the key's value at ``revision`` or now; None if absent)."""

    async def list(
        self,
        prefix: str,
        revision: int | None = None,
        limit: int = 0,
        start_after: str | None = None,
    ) -> ListResult:
        """Keys starting with ``prefix`` in key order, at ``revision`` (default: now).

        ``limit`` 0 means all; ``start_after`` skips keys up to and including it.
        """

    async def count(self, prefix: str) -> tuple[int, int]:
        """(revision, number of live keys under prefix)."""

    async def create(self, key: str, value: bytes, lease_ttl: int = 0) -> int:
        """Write a new key; KeyExistsError if it exists. ``lease_ttl`` > 0 expires it."""

    async def update(
        self, key: str, value: bytes, expected_mod_revision: int, lease_ttl: int = 0
    ) -> int:
        """Replace a key if its mod revision is ``expected_mod_revision``.

        ``expected_mod_revision`` 0 means unconditional. KeyNotFoundError if absent,
        ConflictError if the revision differs.
        """

    async def delete(self, key: str, expected_mod_revision: int = 0) -> tuple[int, KeyValue]:
        """Delete a key (conditionally unless 0); returns (revision, the deleted value)."""

    def watch(self, prefix: str, after_revision: int) -> Watch:
        """Every change under ``prefix`` with revision > ``after_revision``, in order.

        The previous value is included on deletes and updates. If ``after_revision`` is
        older than the compacted revision the watch raises CompactedError.
        """

    async def compact(self, revision: int) -> None:
        """Forget history at and below ``revision`` (keeping each key's newest value)."""

    async def close(self) -> None:
        """Release connections and background tasks."""


def open_store(url: str) -> Store:
    """Open a store by URL: ``sqlite://PATH`` (embedded) or ``etcd://HOST:PORT[,HOST:PORT]``.

    ``memory://`` is an alias for an SQLite store in a temporary file, for tests.
    """
    if url.startswith("sqlite://") or url.startswith("memory://"):
        from tinykube.storage.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if url.startswith("etcd://"):
        from tinykube.storage.etcd import EtcdStore

        return EtcdStore.from_url(url)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite://PATH or etcd://HOST:PORT")
