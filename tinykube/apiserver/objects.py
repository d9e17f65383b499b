"""One resource's objects in the store, with store errors turned into API errors.

The stored value is the object's JSON without ``metadata.resourceVersion``; reads set it
from the key's ``mod_revision`` (as kube-apiserver does with etcd).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import orjson

from tinykube.api import errors
from tinykube.api.kinds import ResourceInfo
from tinykube.apiserver.watchcache import decode
from tinykube.storage.store import (ConflictError, KeyExistsError, KeyNotFoundError, Store,
                                    StoreError, UnavailableError, CompactedError,
                                    FutureRevisionError, ValueTooLargeError)

log = logging.getLogger(__name__)


def encode(obj: dict) -> bytes:
    """The stored form: the object without its resourceVersion."""
    md = obj.get("metadata") or {}
    if "resourceVersion" in md:
        obj = {**obj, "metadata": {k: v for k, v in md.items() if k != "resourceVersion"}}
    return orjson.dumps(obj)


@contextmanager
def store_errors(info: ResourceInfo, name: str) -> Iterator[None]:
    """Translate the store's expected outcomes into the API's Status errors."""
    try:
        yield
    except KeyExistsError:
        raise errors.already_exists(info, name) from None
    except KeyNotFoundError:
        raise errors.not_found(info, name) from None
    except ConflictError:
        raise errors.conflict(info, name) from None
    except CompactedError as exc:
        raise errors.too_old_resource_version(exc.requested, exc.compact_revision) from None
    except FutureRevisionError as exc:
        raise errors.timeout(f"Too large resource version: {exc.requested}, "
                             f"current: {exc.current}", 1) from None
    except ValueTooLargeError as exc:
        # etcd's request size limit, answered as kube-apiserver does.
        raise errors.request_entity_too_large(str(exc)) from None
    except UnavailableError as exc:
        log.warning("store unavailable: %s", exc)
        raise errors.service_unavailable(f"storage is unavailable: {exc}") from None
    except StoreError as exc:
        log.error("store failure on %s %r: %s", info.resource, name, exc)
        raise errors.internal_error(exc) from None


class Objects:
    """CRUD on one resource's keys: the storage layer of the REST handlers."""

    def __init__(self, store: Store, info: ResourceInfo):
        self.store = store
        self.info = info

    def key(self, namespace: str, name: str) -> str:
        return self.info.storage_key(namespace if self.info.namespaced else None, name)

    async def get(self, namespace: str, name: str) -> tuple[dict, int]:
        """(object, its mod revision); 404 when absent."""
        with store_errors(self.info, name):
            _, kv = await self.store.get(self.key(namespace, name))
        if kv is None:
            raise errors.not_found(self.info, name)
        return decode(kv.value, kv.mod_revision), kv.mod_revision

    async def get_twice(self, namespace: str, name: str) -> tuple[dict, dict, int] | None:
        """(object, a second private decoding of it, mod revision), None when absent: the
        read of a read-modify-write, whose mutation needs a copy (decoding the stored bytes
        again is cheaper than copying the dict)."""
        try:
            with store_errors(self.info, name):
                _, kv = await self.store.get(self.key(namespace, name))
        except errors.ApiError as err:
            if err.code == 404:
                return None
            raise
        if kv is None:
            return None
        return decode(kv.value, kv.mod_revision), decode(kv.value, kv.mod_revision), \
            kv.mod_revision

    async def get_or_none(self, namespace: str, name: str) -> tuple[dict, int] | None:
        try:
            return await self.get(namespace, name)
        except errors.ApiError as err:
            if err.code == 404:
                return None
            raise

    async def create(self, namespace: str, name: str, obj: dict, ttl: int = 0) -> dict:
        with store_errors(self.info, name):
            revision = await self.store.create(self.key(namespace, name), encode(obj), ttl)
        return _with_revision(obj, revision)

    async def update(self, namespace: str, name: str, obj: dict, expected: int,
                     ttl: int = 0) -> dict:
        with store_errors(self.info, name):
            revision = await self.store.update(self.key(namespace, name), encode(obj), expected,
                                               ttl)
        return _with_revision(obj, revision)

    async def delete(self, namespace: str, name: str, expected: int = 0) -> dict:
        """Remove the key; returns the deleted object with the deletion's revision."""
        with store_errors(self.info, name):
            revision, kv = await self.store.delete(self.key(namespace, name), expected)
        obj = decode(kv.value, kv.mod_revision) if kv.value else {}
        return _with_revision(obj, revision)


def _with_revision(obj: dict, revision: int) -> dict:
    obj = dict(obj)
    obj["metadata"] = {**(obj.get("metadata") or {}), "resourceVersion": str(revision)}
    return obj
