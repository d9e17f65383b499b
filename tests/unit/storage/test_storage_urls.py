"""Store URLs and the small etcd helpers."""

from __future__ import annotations

import os

import pytest

from tinykube.storage.etcd import EtcdStore, grpc_target
from tinykube.storage.etcdwatch import prefix_range_end
from tinykube.storage.sqlite import SQLiteStore
from tinykube.storage.store import open_store


async def test_sqlite_urls(tmp_path) -> None:
    store = SQLiteStore.from_url(f"sqlite://{tmp_path}/a.db?synchronous=NORMAL")
    assert store.path == f"{tmp_path}/a.db"
    await store.close()
    mem = open_store("memory://")
    assert isinstance(mem, SQLiteStore) and os.path.exists(mem.path)
    await mem.close()
    assert not os.path.exists(mem.path)


def test_bad_urls() -> None:
    with pytest.raises(ValueError):
        open_store("redis://x")
    with pytest.raises(ValueError):
        SQLiteStore.from_url("sqlite://")
    with pytest.raises(ValueError):
        EtcdStore.from_url("etcd://127.0.0.1")
    with pytest.raises(ValueError):
        SQLiteStore("x.db", synchronous="SOMETIMES")


def test_etcd_url_and_targets() -> None:
    store = EtcdStore.from_url("etcd://127.0.0.1:2379,127.0.0.1:22379?timeout=1.5")
    assert store.endpoints == ["127.0.0.1:2379", "127.0.0.1:22379"] and store.timeout == 1.5
    assert grpc_target(store.endpoints) == "ipv4:127.0.0.1:2379,127.0.0.1:22379"
    assert grpc_target(["localhost:2379"]) == "dns:///localhost:2379"


def test_prefix_range_end() -> None:
    assert prefix_range_end(b"/registry/") == b"/registry0"
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"") == b"\0"


async def test_closed_store_is_unavailable(tmp_path) -> None:
    from tinykube.storage.store import UnavailableError

    store = open_store(f"sqlite://{tmp_path}/c.db")
    await store.create("/a", b"1")
    await store.close()
    with pytest.raises(UnavailableError):
        await store.get("/a")
    with pytest.raises(UnavailableError):
        await store.create("/b", b"1")


def test_unopenable_sqlite_path_is_a_clear_error(tmp_path) -> None:
    from tinykube.storage.store import UnavailableError

    with pytest.raises(UnavailableError, match="cannot open SQLite store"):
        SQLiteStore(str(tmp_path / "missing-dir" / "x.db"))


def test_etcd_tls_url() -> None:
    store = EtcdStore.from_url("etcd://127.0.0.1:2379?cacert=/pki/ca.crt&cert=/pki/c.crt&key=/pki/c.key")
    assert store.tls is not None
    assert (store.tls.cacert, store.tls.cert, store.tls.key) == ("/pki/ca.crt", "/pki/c.crt", "/pki/c.key")
    assert EtcdStore.from_url("etcd://127.0.0.1:2379").tls is None
    with pytest.raises(ValueError, match="timeout"):
        EtcdStore.from_url("etcd://127.0.0.1:2379?timeout=soon")
