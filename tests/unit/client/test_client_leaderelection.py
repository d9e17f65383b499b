"""LeaderElector: one leader at a time, takeover after expiry, step down on failed renew."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from tinykube.client.fake import serve_fake
from tinykube.client.leaderelection import LeaderElector, lease_expired, next_spec
from tinykube.client.rest import Client

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
LEASES = "/apis/coordination.k8s.io/v1/leases"


def test_next_spec_rules():
    fresh = next_spec(None, "a", 15, NOW)
    assert fresh["holderIdentity"] == "a" and fresh["leaseTransitions"] == 0
    assert fresh["renewTime"] == "2026-01-01T12:00:00.000000Z"
    later = NOW + timedelta(seconds=5)
    assert next_spec(fresh, "b", 15, later) is None  # live holder
    renewed = next_spec(fresh, "a", 15, later)
    assert renewed["acquireTime"] == fresh["acquireTime"]
    assert renewed["renewTime"] == "2026-01-01T12:00:05.000000Z"
    expired_at = NOW + timedelta(seconds=16)
    assert lease_expired(fresh, expired_at)
    taken = next_spec(fresh, "b", 15, expired_at)
    assert taken["holderIdentity"] == "b" and taken["leaseTransitions"] == 1


def test_identity_default_shape():
    elector = LeaderElector(Client("http://127.0.0.1:1"), "kube-system", "x")
    host, _, uid = elector.identity.partition("_")
    assert host and len(uid) == 36


def test_rejects_inconsistent_timings():
    with pytest.raises(ValueError):
        LeaderElector(Client("http://127.0.0.1:1"), "ns", "x", lease_duration=5,
                      renew_deadline=10)


def elector(client, identity, **kw):
    return LeaderElector(client, "kube-system", "kube-scheduler", identity,
                         lease_duration=kw.pop("lease_duration", 1),
                         renew_deadline=kw.pop("renew_deadline", 0.6),
                         retry_period=kw.pop("retry_period", 0.1), **kw)


async def test_one_leader_then_takeover_after_crash():
    async with serve_fake() as (fake, url):
        async with Client(url) as client:
            started = {"a": asyncio.Event(), "b": asyncio.Event()}

            def leading(name):
                async def work():
                    started[name].set()
                    await asyncio.Event().wait()
                return work

            a = elector(client, "a", release_on_cancel=False)
            b = elector(client, "b")
            run_a = asyncio.create_task(a.run(leading("a")))
            await asyncio.wait_for(started["a"].wait(), 2)
            run_b = asyncio.create_task(b.run(leading("b")))
            await asyncio.sleep(0.3)  # several of b's retry periods
            assert not started["b"].is_set() and a.is_leader and not b.is_leader
            run_a.cancel()  # a crashes without releasing
            await asyncio.gather(run_a, return_exceptions=True)
            await asyncio.wait_for(started["b"].wait(), 3)
            spec = fake.objects[(LEASES, "kube-system", "kube-scheduler")]["spec"]
            assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
            run_b.cancel()
            await asyncio.gather(run_b, return_exceptions=True)
            spec = fake.objects[(LEASES, "kube-system", "kube-scheduler")]["spec"]
            assert spec["holderIdentity"] == ""  # released on cancel


async def test_leader_steps_down_when_renewal_fails():
    async with serve_fake() as (fake, url):
        async with Client(url) as client:
            started, cancelled = asyncio.Event(), asyncio.Event()

            async def work():
                started.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cancelled.set()
                    raise

            a = elector(client, "a")
            run = asyncio.create_task(a.run(work))
            await asyncio.wait_for(started.wait(), 2)
            fake.fail_next.extend([(500, "InternalError", "etcd down")] * 100)
            await asyncio.wait_for(cancelled.wait(), 3)
            await asyncio.wait_for(run, 2)
            assert not a.is_leader
            fake.fail_next.clear()
