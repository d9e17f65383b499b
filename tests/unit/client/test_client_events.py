"""EventRecorder writes core/v1 Events and aggregates repeats into count."""

from __future__ import annotations

import pytest

from tinykube.client.events import EventRecorder
from tinykube.client.fake import serve_fake
from tinykube.client.rest import Client

EVENTS = "/api/v1/events"
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web", "namespace": "ns1", "uid": "u1", "resourceVersion": "7"}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u2"}}


async def test_event_shape_and_aggregation():
    async with serve_fake() as (fake, url):
        async with Client(url) as client:
            rec = EventRecorder(client, "default-scheduler", host="h1")
            rec.event(POD, "Normal", "Scheduled", "Successfully assigned ns1/web to n1")
            await rec.close()
            rec.event(POD, "Warning", "FailedScheduling", "0/1 nodes are available")
            rec.event(POD, "Warning", "FailedScheduling", "0/1 nodes are available")
            await rec.close()
            rec.event(POD, "Warning", "FailedScheduling", "0/1 nodes are available")
            rec.event(NODE, "Normal", "Starting", "Starting kubelet.")
            await rec.close()
    events = {o["reason"]: o for (c, _, _), o in fake.objects.items() if c == EVENTS}
    scheduled = events["Scheduled"]
    assert scheduled["metadata"]["namespace"] == "ns1"
    assert scheduled["metadata"]["name"].startswith("web.")
    assert scheduled["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "web",
                                           "uid": "u1", "namespace": "ns1",
                                           "resourceVersion": "7"}
    assert scheduled["source"] == {"component": "default-scheduler", "host": "h1"}
    assert scheduled["type"] == "Normal" and scheduled["count"] == 1
    assert scheduled["reportingComponent"] == "default-scheduler"
    assert scheduled["firstTimestamp"].endswith("Z")
    assert events["FailedScheduling"]["count"] == 3
    creates = [r for r in fake.requests if r.method == "POST"]
    assert len(creates) == 3  # Scheduled, FailedScheduling once, Starting
    assert events["Starting"]["metadata"]["namespace"] == "default"


async def test_bad_type_is_rejected_and_full_queue_drops():
    client = Client("http://127.0.0.1:9")
    rec = EventRecorder(client, "c", queue_size=1)
    with pytest.raises(ValueError):
        rec.event(POD, "Info", "X", "y")
    rec.event(POD, "Normal", "A", "1")
    rec.event(POD, "Normal", "B", "2")
    assert rec.dropped == 1
    await rec.close()  # the write fails (nothing listens) and is logged, not raised
    await client.close()


async def test_rate_limit_delays_writes_and_drops_none():
    import asyncio
    import time

    async with serve_fake() as (fake, url):
        async with Client(url) as client:
            rec = EventRecorder(client, "kubelet", host="n1", qps=20, burst=2)
            started = time.monotonic()
            for i in range(6):
                rec.event(POD, "Normal", f"R{i}", "m")

            def written() -> int:
                return sum(1 for (c, _, _) in fake.objects if c == EVENTS)

            await asyncio.sleep(0.03)
            assert written() == 2  # the burst went out at once, the rest waits for tokens
            while written() < 6:
                assert time.monotonic() - started < 5
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - started
            assert rec.dropped == 0
            assert elapsed >= 0.15  # 4 more tokens at 20/s
            # repeats queued while waiting fold into one write; close() flushes at once
            for _ in range(5):
                rec.event(POD, "Warning", "Again", "same")
            rec.event(POD, "Normal", "Last", "m")
            flush = time.monotonic()
            await rec.close()
            assert time.monotonic() - flush < 0.5
    events = {o["reason"]: o for (c, _, _), o in fake.objects.items() if c == EVENTS}
    assert events["Again"]["count"] == 5 and "Last" in events


class SlowEvents:
    """An events resource that takes a while per create and notes how many overlap."""

    def __init__(self) -> None:
        self.in_flight = self.most_in_flight = 0
        self.reasons: list[str] = []

    def resource(self, _name: str) -> SlowEvents:
        return self

    async def create(self, event: dict, namespace: str) -> dict:
        import asyncio

        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.005)
        self.in_flight -= 1
        self.reasons.append(event["reason"])
        return event


async def test_events_are_written_one_at_a_time_in_order():
    """As client-go's broadcaster records to its sink from one goroutine: a burst of Events
    does not open a request per Event at once."""
    events = SlowEvents()
    rec = EventRecorder(events, "kubelet", host="n1")  # type: ignore[arg-type]
    for i in range(20):
        rec.event(POD, "Normal", f"R{i}", "m")
    await rec.close()
    assert events.reasons == [f"R{i}" for i in range(20)]
    assert events.most_in_flight == 1


def test_token_bucket():
    from tinykube.client.events import TokenBucket

    bucket = TokenBucket(qps=10, burst=3)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    assert 0 < bucket.until_next() <= 0.1  # one token comes every 1/qps seconds
