"""The server's request checks (pure helpers)."""

from __future__ import annotations

from tinykube.dashboard.guards import host_name, is_loopback


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


def test_host_name_drops_the_port():
    assert host_name("127.0.0.1:8001") == "127.0.0.1"
    assert host_name("localhost") == "localhost"
    assert host_name("[::1]:8001") == "::1"
    assert host_name("evil.example:80") == "evil.example"
