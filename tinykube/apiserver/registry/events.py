"""Events: stored with a TTL (``--event-ttl``, one hour by default) so they age out."""

from __future__ import annotations

from tinykube.apiserver.registry.base import Strategy

DEFAULT_EVENT_TTL_SECONDS = 3600


class EventStrategy(Strategy):
    ttl_seconds = DEFAULT_EVENT_TTL_SECONDS
