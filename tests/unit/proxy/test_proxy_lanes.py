"""`stream.Lanes`: independent blocks round robin over loaders, the rest to the first."""

from __future__ import annotations

import asyncio

import pytest

from tinykube.proxy.stream import Lanes


class Loader:
    def __init__(self, name: str, log: list[tuple[str, str]], fail: bool = False) -> None:
        self.name, self.log, self.fail, self.failed = name, log, fail, False
        self.state = "open"

    async def write(self, text: str) -> None:
        self.log.append((self.name, text))

    async def close(self) -> None:
        await asyncio.sleep(0)
        self.state = "closed"
        if self.fail:
            raise RuntimeError(f"{self.name} failed")

    async def abort(self) -> None:
        self.state = "aborted" if self.state == "open" else self.state


def lanes_of(count: int, fail: set[str] = frozenset()) -> tuple[Lanes, list[Loader], list[tuple[str, str]]]:
    log: list[tuple[str, str]] = []
    opened = [Loader("a", log, "a" in fail)]

    async def open_more() -> Loader:
        opened.append(Loader("bcd"[len(opened) - 1], log, "bcd"[len(opened) - 1] in fail))
        return opened[-1]
    return Lanes(opened[0], open_more, count), opened, log


async def test_spread_takes_turns_and_join_closes_all_but_the_first() -> None:
    lanes, opened, log = lanes_of(3)
    await lanes.write("head")
    for i in range(5):
        await lanes.spread(f"b{i}")
    await lanes.join()
    assert [o.state for o in opened] == ["open", "closed", "closed"]
    await lanes.write("switch")
    await lanes.close()
    assert log == [("a", "head"), ("b", "b0"), ("c", "b1"), ("a", "b2"), ("b", "b3"), ("c", "b4"), ("a", "switch")]
    assert opened[0].state == "closed"


async def test_a_failed_lane_is_reported_after_every_lane_is_closed() -> None:
    lanes, opened, _ = lanes_of(3, fail={"b"})
    for i in range(2):
        await lanes.spread(f"b{i}")
    with pytest.raises(RuntimeError, match="b failed"):
        await lanes.close()
    assert [o.state for o in opened] == ["aborted", "closed", "closed"]


async def test_abort_reaches_a_lane_whose_close_was_cancelled() -> None:
    lanes, opened, _ = lanes_of(2)
    await lanes.spread("b0")
    await lanes.spread("b1")
    join = asyncio.ensure_future(lanes.join())
    await asyncio.sleep(0)  # inside the second lane's close
    join.cancel()
    with pytest.raises(asyncio.CancelledError):
        await join
    await lanes.abort()
    assert opened[0].state == "aborted" and opened[1].state == "aborted"
