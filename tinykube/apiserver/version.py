"""``/version``: the build information kubectl and client libraries read first.

``/usr/bin/kubectl`` picks its binary from ``gitVersion``, and client-go compares
``major``/``minor`` for version-skew warnings, so tinykube reports the Kubernetes API
version it implements (v1.32) rather than its own package version.
"""

from __future__ import annotations

import platform
import sys

import orjson
from aiohttp import web

GIT_VERSION = "v1.32.0"
GIT_COMMIT = "0000000000000000000000000000000000000000"
BUILD_DATE = "2024-12-11T00:00:00Z"

_MACHINES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


def platform_string() -> str:
    """``linux/amd64`` as Go spells GOOS/GOARCH."""
    machine = platform.machine().lower()
    return f"{sys.platform.rstrip('0123456789')}/{_MACHINES.get(machine, machine)}"


def version_info() -> dict[str, str]:
    """The ``version.Info`` document (k8s.io/apimachinery/pkg/version)."""
    major, minor = GIT_VERSION.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": GIT_VERSION,
        "gitCommit": GIT_COMMIT,
        "gitTreeState": "clean",
        "buildDate": BUILD_DATE,
        "goVersion": f"python{platform.python_version()}",
        "compiler": "cpython" if platform.python_implementation() == "CPython" else "python",
        "platform": platform_string(),
    }


def setup(app: web.Application, server: object) -> None:
    """Serve ``GET /version`` (and ``/version/``) from a document built once."""
    body = orjson.dumps(version_info(), option=orjson.OPT_INDENT_2)

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get("/version", handle)
    app.router.add_get("/version/", handle)
