"""Health endpoint formatting and the store check."""

import asyncio

from tinykube.apiserver import health
from tinykube.storage.store import UnavailableError


class _Store:
    def __init__(self, error: Exception | None = None):
        self.error = error

    async def current_revision(self) -> int:
        if self.error:
            raise self.error
        return 7


class _Server:
    def __init__(self, store):
        self.store = store


def test_plain_ok_and_verbose_listing():
    results = [("ping", None), ("etcd", None)]
    assert health.render("readyz", results, verbose=False, excluded=[]) == (200, "ok")
    status, body = health.render("readyz", results, verbose=True, excluded=["log"])
    assert status == 200
    assert body.splitlines() == ["[+]ping ok", "[+]etcd ok", "[+]log excluded: ok",
                                 "readyz check passed"]


def test_failure_lists_checks_and_withholds_reason():
    status, body = health.render("livez", [("ping", None), ("etcd", "refused")],
                                 verbose=False, excluded=[])
    assert status == 500
    assert "[-]etcd failed: reason withheld" in body
    assert body.rstrip().endswith("livez check failed")
    assert "refused" not in body


async def test_store_check_reports_unavailable_store():
    ok = health.Check("etcd", health.store_check(_Server(_Store())))
    assert await health.run_check(ok) is None
    down = health.Check("etcd", health.store_check(_Server(_Store(UnavailableError("down")))))
    assert "down" in await health.run_check(down)


async def test_store_check_times_out(monkeypatch):
    class Hanging:
        async def current_revision(self):
            await asyncio.Event().wait()

    monkeypatch.setattr(health, "STORE_TIMEOUT_SECONDS", 0.01)
    check = health.Check("etcd", health.store_check(_Server(Hanging())))
    assert await health.run_check(check) is not None


def test_readyz_has_more_checks_than_livez():
    lifecycle = health.Lifecycle()
    server = _Server(_Store())
    ready = [c.name for c in health.checks_for("readyz", server, lifecycle)]
    live = [c.name for c in health.checks_for("livez", server, lifecycle)]
    assert ready[:3] == live[:3] == ["ping", "log", "etcd"]
    assert "shutdown" in ready and "shutdown" not in live
    assert "informer-sync" in ready
