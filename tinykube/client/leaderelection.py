"""Leader election on a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Candidates race to write the Lease. A candidate takes it when it is free or expired
(``renewTime + leaseDurationSeconds < now``), bumping ``leaseTransitions`` on a takeover;
the holder renews it every ``retry_period``. A holder that fails to renew for
``renew_deadline`` stops leading: its ``on_started_leading`` task is cancelled. Writes use
the Lease's resourceVersion, so two candidates can never both succeed in one round.
``renew_deadline`` must be shorter than ``lease_duration`` so a leader steps down before
another candidate may take over.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from tinykube import aio
from tinykube.api import meta
from tinykube.api.errors import ApiError
from tinykube.client.rest import Client

log = logging.getLogger(__name__)

JITTER_FACTOR = 1.2  # client-go's JitterFactor for retries while not leading
Lease = dict[str, Any]


def default_identity() -> str:
    """``<hostname>_<uuid>``, as kube-scheduler and kube-controller-manager name themselves."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_expired(spec: dict[str, Any], now: datetime) -> bool:
    """A Lease nobody holds, or whose holder did not renew within leaseDurationSeconds."""
    if not spec.get("holderIdentity"):
        return True
    renew = spec.get("renewTime") or spec.get("acquireTime")
    if not renew:
        return True
    duration = spec.get("leaseDurationSeconds") or 0
    return meta.parse_time(renew) + timedelta(seconds=duration) < now


def next_spec(current: dict[str, Any] | None, identity: str, lease_duration: int,
              now: datetime) -> dict[str, Any] | None:
    """The spec to write to (re)acquire the Lease, or None while another holder is live."""
    stamp = _micro(now)
    if current is None:
        return {"holderIdentity": identity, "leaseDurationSeconds": lease_duration,
                "acquireTime": stamp, "renewTime": stamp, "leaseTransitions": 0}
    holder = current.get("holderIdentity") or ""
    if holder == identity:
        return {**current, "leaseDurationSeconds": lease_duration, "renewTime": stamp}
    if not lease_expired(current, now):
        return None
    return {"holderIdentity": identity, "leaseDurationSeconds": lease_duration,
            "acquireTime": stamp, "renewTime": stamp,
            "leaseTransitions": (current.get("leaseTransitions") or 0) + 1}


class LeaderElector:
    """Campaign for one Lease and run a coroutine while holding it."""

    def __init__(self, client: Client, namespace: str, name: str, identity: str | None = None,
                 lease_duration: float = 15, renew_deadline: float = 10,
                 retry_period: float = 2, release_on_cancel: bool = True) -> None:
        if not lease_duration > renew_deadline > retry_period * JITTER_FACTOR / 2:
            raise ValueError("need lease_duration > renew_deadline > retry_period")
        self.leases = client.resource("leases", "coordination.k8s.io")
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_cancel = release_on_cancel
        self.observed_holder: str = ""
        self._leading = False
        self._lease: Lease | None = None
        # Set while leading, so callers can wait for leadership instead of polling.
        self.leading = asyncio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leading

    async def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, write it if we may; True when we hold it now."""
        now = datetime.now(timezone.utc)
        try:
            lease = await self.leases.get(self.name, namespace=self.namespace)
        except ApiError as exc:
            if exc.code != 404:
                raise
            lease = None
        spec = (lease.get("spec") or {}) if lease else None
        if spec is not None:
            self.observed_holder = spec.get("holderIdentity") or ""
        desired = next_spec(spec, self.identity, int(self.lease_duration), now)
        if desired is None:
            return False
        try:
            if lease is None:
                self._lease = await self.leases.create(
                    {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": self.name, "namespace": self.namespace},
                     "spec": desired}, namespace=self.namespace)
            else:
                self._lease = await self.leases.update({**lease, "spec": desired})
        except ApiError as exc:
            if exc.code in (409, 404):  # someone else wrote first: lost this round
                return False
            raise
        if self.observed_holder != self.identity:
            log.info("%s: acquired lease %s/%s", self.identity, self.namespace, self.name)
        self.observed_holder = self.identity
        return True

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except (ApiError, ConnectionError, asyncio.TimeoutError) as exc:
            log.warning("%s: error updating lease %s/%s: %s", self.identity, self.namespace,
                        self.name, exc)
            return False

    async def acquire(self) -> None:
        """Retry (with jitter) until we hold the Lease."""
        while not await self._attempt():
            await asyncio.sleep(self.retry_period * random.uniform(1, JITTER_FACTOR))

    async def renew_until_lost(self) -> None:
        """Renew every retry_period; return once renewal failed for renew_deadline."""
        loop = asyncio.get_running_loop()
        last_renew = loop.time()
        while True:
            await asyncio.sleep(self.retry_period)
            try:
                ok = await aio.wait_for(self._attempt(), self.renew_deadline)
            except asyncio.TimeoutError:
                ok = False
            if ok:
                last_renew = loop.time()
            elif loop.time() - last_renew >= self.renew_deadline:
                log.warning("%s: failed to renew lease %s/%s within %.0fs, stepping down",
                            self.identity, self.namespace, self.name, self.renew_deadline)
                return

    async def run(self, on_started_leading: Callable[[], Awaitable[None]]) -> None:
        """Acquire, run ``on_started_leading`` while leading; return when leadership ends.

        The leading task is cancelled when renewal fails; if ``run`` itself is cancelled
        while leading and ``release_on_cancel`` is set, the Lease is released so a standby
        takes over at once instead of after lease_duration.
        """
        await self.acquire()
        self._leading = True
        self.leading.set()
        work = asyncio.create_task(on_started_leading(), name=f"leading-{self.name}")
        renew = asyncio.create_task(self.renew_until_lost(), name=f"renew-{self.name}")
        try:
            await asyncio.wait({work, renew}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._leading = False
            self.leading.clear()
            for task in (work, renew):
                task.cancel()
            results = await asyncio.gather(work, renew, return_exceptions=True)
            if self.release_on_cancel:
                await self.release()
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def release(self) -> None:
        """Give the Lease up if we still hold it (holderIdentity cleared, as client-go)."""
        if self._lease is None or self.observed_holder != self.identity:
            return
        spec = dict(self._lease.get("spec") or {})
        now = _micro(datetime.now(timezone.utc))
        spec.update({"holderIdentity": "", "leaseDurationSeconds": 1,
                     "renewTime": now, "acquireTime": now})
        try:
            await self.leases.update({**self._lease, "spec": spec})
        except (ApiError, ConnectionError) as exc:
            log.warning("%s: could not release lease %s/%s: %s", self.identity,
                        self.namespace, self.name, exc)
        self._lease = None
        self.observed_holder = ""
