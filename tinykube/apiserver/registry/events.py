"""Events: stored with a TTL (``--event-ttl``, one hour by default) so they age out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinykube.apiserver.registry.base import Strategy

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer


class EventStrategy(Strategy):
    def ttl(self, server: "APIServer") -> int:
        return server.config.event_ttl_seconds
