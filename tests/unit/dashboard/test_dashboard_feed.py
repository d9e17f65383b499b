"""The change feed, SSE encoding and the actions' input checks (no server)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tinykube.api.errors import ApiError
from tinykube.dashboard.actions import parse_replicas
from tinykube.dashboard.feed import CLOSED, RESYNC, Change, Feed, sse_message


def pod(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}}


async def test_informer_handlers_publish_to_every_subscriber_in_order():
    feed = Feed()
    a, b = feed.subscribe(), feed.subscribe()
    handlers = feed.handlers("pods")
    handlers["on_add"](pod("x"))
    handlers["on_update"](pod("x"), pod("x2"))
    handlers["on_delete"](pod("x2"))
    for sub in (a, b):
        changes = [await sub.next(1.0) for _ in range(3)]
        assert [(c.resource, c.type, c.obj["metadata"]["name"]) for c in changes] == \
            [("pods", "ADDED", "x"), ("pods", "MODIFIED", "x2"), ("pods", "DELETED", "x2")]
    feed.unsubscribe(a)
    handlers["on_add"](pod("y"))
    assert len(a) == 0 and len(b) == 1


async def test_next_waits_for_a_change_or_times_out():
    feed = Feed()
    sub = feed.subscribe()
    assert await sub.next(0.01) is None
    waiter = asyncio.ensure_future(sub.next(5.0))
    await asyncio.sleep(0)
    feed.publish(Change("pods", "ADDED", pod("z")))
    assert (await asyncio.wait_for(waiter, 5.0)).obj == pod("z")


async def test_a_subscriber_that_falls_behind_is_told_to_resync():
    feed = Feed(max_pending=3)
    sub = feed.subscribe()
    for i in range(4):
        feed.publish(Change("pods", "ADDED", pod(str(i))))
    assert len(sub) == 1 and await sub.next(1.0) is RESYNC
    feed.publish(Change("pods", "ADDED", pod("after")))
    assert (await sub.next(1.0)).obj == pod("after")


async def test_close_drops_pending_changes_and_ends_streams():
    feed = Feed()
    sub = feed.subscribe()
    feed.publish(Change("pods", "ADDED", pod("x")))
    feed.close()
    assert await sub.next(1.0) is CLOSED and len(sub) == 0


def test_sse_message_is_one_json_data_line():
    raw = sse_message("change", {"name": "a\nb", "n": 1}, event_id=7).decode()
    assert raw.endswith("\n\n")
    lines = raw.rstrip("\n").split("\n")
    assert lines[:2] == ["id: 7", "event: change"]
    assert orjson.loads(lines[2].removeprefix("data: ")) == {"name": "a\nb", "n": 1}
    assert sse_message("hello", {}).decode() == "event: hello\ndata: {}\n\n"


@pytest.mark.parametrize("body", [{"replicas": "3"}, {"replicas": True}, {}, [3],
                                  {"replicas": -1}, {"replicas": 10_001}, {"replicas": 1.5}])
def test_parse_replicas_refuses_non_counts(body):
    with pytest.raises(ApiError) as err:
        parse_replicas(body)
    assert err.value.code == 400


def test_parse_replicas():
    assert parse_replicas({"replicas": 0}) == 0
    assert parse_replicas({"replicas": 5}) == 5

