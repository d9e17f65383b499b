"""Optional forwarding of out-of-cluster names to configured upstream resolvers (off by
default: with no upstreams nothing is ever sent off the host)."""

from __future__ import annotations

import asyncio
import logging

from tinykube import aio

log = logging.getLogger(__name__)


class _OneShot(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


def _split(upstream: str) -> tuple[str, int]:
    host, sep, port = upstream.rpartition(":")
    return (host, int(port)) if sep and port.isdigit() else (upstream, 53)


async def forward_query(query: bytes, upstreams: list[str], timeout: float) -> bytes | None:
    """Ask each upstream in turn over UDP; the first answer wins, None if all fail."""
    loop = asyncio.get_running_loop()
    for upstream in upstreams:
        host, port = _split(upstream)
        transport, proto = await loop.create_datagram_endpoint(_OneShot, remote_addr=(host, port))
        try:
            transport.sendto(query)
            return await aio.wait_for(proto.answer, timeout)
        except (TimeoutError, OSError) as exc:
            log.warning("dns: upstream %s failed: %s", upstream, exc)
        finally:
            transport.close()
    return None
