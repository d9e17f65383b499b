"""Test helpers: pytest plugins for real servers, and ``cluster()`` for operator tests."""

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    # Imported lazily: the pytest plugins in this package must not pull in every component.
    if name in ("cluster", "Cluster"):
        return getattr(importlib.import_module("tinykube.testing.inprocess"), name)
    raise AttributeError(name)
