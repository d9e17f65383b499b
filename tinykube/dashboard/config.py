"""The dashboard's configuration, as ``tinykube dashboard`` flags map onto it."""

from __future__ import annotations

from dataclasses import dataclass

from tinykube.client.rest import Client


@dataclass
class DashboardConfig:
    """Where the API server is (``kubeconfig`` or a ready ``client``) and where to listen.

    ``port=0`` picks a free port (tests); the dashboard's ``port`` tells which one.
    """

    kubeconfig: str | None = None
    client: Client | None = None
    context: str | None = None
    bind_address: str = "127.0.0.1"
    port: int = 8001
    keepalive_seconds: float = 15.0
    max_pending_changes: int = 2000
