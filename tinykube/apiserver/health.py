"""``/healthz``, ``/livez`` and ``/readyz``: kube-apiserver's health endpoints.

Each endpoint runs a list of named checks. The plain answer is ``ok``; ``?verbose``
lists every check as ``[+]name ok`` / ``[-]name failed: reason withheld`` and ends with
``<endpoint> check passed``; ``?exclude=name`` skips a check; ``/<endpoint>/<name>`` runs
one. A failing check makes the answer 500 and always prints the list, as upstream does,
so probes and people see which part is down. Reasons go to the log, not to the client.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from tinykube import aio
from tinykube.storage.store import StoreError

log = logging.getLogger(__name__)

# A check returns None when healthy and raises (or returns a reason) otherwise.
CheckFn = Callable[[], Awaitable[str | None]]

STORE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFn


@dataclass
class Lifecycle:
    """What the start/shutdown hooks have reached; read by the checks."""

    started: bool = False
    shutting_down: bool = False


async def _ok() -> str | None:
    return None


def store_check(server: object) -> CheckFn:
    """The ``etcd`` check: the store answers a cheap read within a bounded time."""

    async def run() -> str | None:
        store = getattr(server, "store", None)
        if store is None:
            return "no store configured"
        await aio.wait_for(store.current_revision(), STORE_TIMEOUT_SECONDS)
        return None

    return run


def flag_check(predicate: Callable[[], bool], reason: str) -> CheckFn:
    async def run() -> str | None:
        return None if predicate() else reason

    return run


async def run_check(check: Check) -> str | None:
    """The reason a check failed, or None; a raising check counts as failed."""
    try:
        return await check.run()
    except (StoreError, OSError, asyncio.TimeoutError) as err:
        return f"{type(err).__name__}: {err}"


def checks_for(endpoint: str, server: object, lifecycle: Lifecycle) -> list[Check]:
    """The checks each endpoint runs, in upstream's order and with upstream's names."""
    started = flag_check(lambda: lifecycle.started, "not finished")
    checks = [
        Check("ping", _ok),
        Check("log", _ok),
        Check("etcd", store_check(server)),
    ]
    if endpoint == "readyz":
        checks.append(Check("etcd-readiness", store_check(server)))
        checks.append(Check("informer-sync", started))
    checks.append(Check("poststarthook/generic-apiserver-start-informers", started))
    checks.append(Check("poststarthook/start-apiserver-admission-initializer", started))
    if endpoint == "readyz":
        checks.append(
            Check("shutdown", flag_check(lambda: not lifecycle.shutting_down,
                                         "process is shutting down"))
        )
    return checks


def render(endpoint: str, results: list[tuple[str, str | None]], verbose: bool,
           excluded: list[str]) -> tuple[int, str]:
    """(HTTP status, body) for a set of check results, formatted as upstream."""
    failed = [name for name, reason in results if reason is not None]
    if not failed and not verbose:
        return 200, "ok"
    lines = []
    for name, reason in results:
        lines.append(f"[+]{name} ok" if reason is None else f"[-]{name} failed: reason withheld")
    for name in excluded:
        lines.append(f"[+]{name} excluded: ok")
    if failed:
        lines.append(f"{endpoint} check failed")
        return 500, "\n".join(lines) + "\n"
    lines.append(f"{endpoint} check passed")
    return 200, "\n".join(lines) + "\n"


def _make_handlers(endpoint: str, server: object, lifecycle: Lifecycle):
    checks = checks_for(endpoint, server, lifecycle)
    by_name = {c.name: c for c in checks}

    async def all_checks(request: web.Request) -> web.Response:
        verbose = "verbose" in request.query
        excluded = [n for n in request.query.getall("exclude", []) if n in by_name]
        selected = [c for c in checks if c.name not in excluded]
        reasons = await asyncio.gather(*(run_check(c) for c in selected))
        results = list(zip((c.name for c in selected), reasons))
        for name, reason in results:
            if reason is not None:
                log.warning("%s check %s failed: %s", endpoint, name, reason)
        status, body = render(endpoint, results, verbose, excluded)
        return _text(status, body)

    async def one_check(request: web.Request) -> web.Response:
        name = request.match_info["check"]
        check = by_name.get(name)
        if check is None:
            return _text(404, "404 page not found\n")
        reason = await run_check(check)
        if reason is None:
            return _text(200, "ok")
        log.warning("%s check %s failed: %s", endpoint, name, reason)
        return _text(500, f"internal server error: {name} check failed\n")

    return all_checks, one_check


def _text(status: int, body: str) -> web.Response:
    resp = web.Response(status=status, text=body, content_type="text/plain")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def setup(app: web.Application, server: object) -> None:
    """Register the three endpoints and the hooks that flip ``started``/``shutdown``."""
    lifecycle = Lifecycle()

    async def on_startup(_app: web.Application) -> None:
        lifecycle.started = True

    async def on_shutdown(_app: web.Application) -> None:
        lifecycle.shutting_down = True

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    for endpoint in ("healthz", "livez", "readyz"):
        all_checks, one_check = _make_handlers(endpoint, server, lifecycle)
        app.router.add_get(f"/{endpoint}", all_checks)
        app.router.add_get(f"/{endpoint}/{{check:.+}}", one_check)
