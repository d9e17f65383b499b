"""etcd with TLS and client certificates, and the tutorial's snapshot backup and restore."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tinykube.storage.etcd import EtcdStore
from tinykube.storage.store import UnavailableError
from tinykube.testing.etcd import EtcdMember, EtcdServer, etcd_available

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.skipif(not etcd_available() or not shutil.which("etcdctl"),
                       reason="etcd/etcdctl not installed"),
]


def etcdctl(server: EtcdMember, *args: str) -> str:
    assert server.tls is not None
    return subprocess.run(
        ["etcdctl", f"--endpoints={server.client_url}", f"--cacert={server.tls.ca}",
         f"--cert={server.tls.cert}", f"--key={server.tls.key}", *args],
        capture_output=True, text=True, timeout=30, check=True, env={"ETCDCTL_API": "3"},
    ).stdout


async def test_tls_store_and_snapshot_restore(tmp_path: Path) -> None:
    server = EtcdServer(tls=True)
    server.start()
    restored: EtcdMember | None = None
    try:
        store = EtcdStore.from_url(server.url)
        rev = await store.create("/registry/configmaps/default/backup-me", b'{"kind":"ConfigMap"}')
        await store.close()
        # Without the client certificate etcd refuses the connection.
        plain = EtcdStore.from_url(f"etcd://{server.endpoint}?timeout=1")
        with pytest.raises(UnavailableError):
            await plain.get("/registry/configmaps/default/backup-me")
        await plain.close()
        backup = tmp_path / "backup.db"
        etcdctl(server, "snapshot", "save", str(backup))
        status = subprocess.run(["etcdctl", "snapshot", "status", str(backup), "-w", "json"],
                                capture_output=True, text=True, timeout=30, check=True,
                                env={"ETCDCTL_API": "3"}).stdout
        assert '"revision":' in status
        # Restore into a new data directory and serve it from a new member.
        restored = EtcdMember("default", tmp_path / "restored", tls=server.tls)
        subprocess.run(
            ["etcdctl", "snapshot", "restore", str(backup), f"--data-dir={restored.data_dir}",
             "--name", "default", f"--initial-cluster=default={restored.peer_url}",
             f"--initial-advertise-peer-urls={restored.peer_url}"],
            capture_output=True, text=True, timeout=30, check=True, env={"ETCDCTL_API": "3"})
        restored.start()
        again = EtcdStore.from_url(restored.url)
        try:
            _, kv = await again.get("/registry/configmaps/default/backup-me")
            assert kv is not None and kv.mod_revision == rev and kv.value == b'{"kind":"ConfigMap"}'
        finally:
            await again.close()
    finally:
        if restored is not None:
            restored.stop()
        server.cleanup()
