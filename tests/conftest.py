"""Shared pytest configuration: fixtures come from ``tinykube.testing`` plugins."""

pytest_plugins: list[str] = []
