"""hostPath: a path of the node itself, checked or created according to ``type``."""

from __future__ import annotations

import os
import stat

from tinykube.kubelet.volumes.base import Obj, VolumeContext, VolumeError


def check(path: str, kind: str) -> None:
    """Upstream's hostPath type checks (DirectoryOrCreate, FileOrCreate, Directory, ...)."""
    if kind == "DirectoryOrCreate":
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif kind == "FileOrCreate":
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
            with open(path, "a"):
                pass
            os.chmod(path, 0o644)
    checks = {
        "Directory": (os.path.isdir, "hostPath type check failed: {p} is not a directory"),
        "File": (os.path.isfile, "hostPath type check failed: {p} is not a file"),
        "Socket": (lambda p: os.path.exists(p) and stat.S_ISSOCK(os.stat(p).st_mode), "hostPath type check failed: {p} is not a socket file"),
        "CharDevice": (lambda p: os.path.exists(p) and stat.S_ISCHR(os.stat(p).st_mode), "hostPath type check failed: {p} is not a character device"),
        "BlockDevice": (lambda p: os.path.exists(p) and stat.S_ISBLK(os.stat(p).st_mode), "hostPath type check failed: {p} is not a block device"),
    }
    if kind in checks:
        ok, message = checks[kind]
        if not ok(path):
            raise VolumeError(message.format(p=path))


async def setup(volume: Obj, ctx: VolumeContext) -> str:
    spec = volume["hostPath"]
    path = spec.get("path", "")
    check(path, spec.get("type") or "")
    return path
