"""emptyDir: a directory that lives as long as the pod; ``medium: Memory`` is a tmpfs."""

from __future__ import annotations

import logging
import subprocess

from tinykube.api.quantity import parse_quantity
from tinykube.kubelet.volumes.base import Obj, VolumeContext, volume_dir

log = logging.getLogger(__name__)


async def setup(volume: Obj, ctx: VolumeContext) -> str:
    path = volume_dir(ctx, "empty-dir", volume["name"])
    spec = volume.get("emptyDir") or {}
    if spec.get("medium") == "Memory" and ctx.can_mount and path not in ctx.mounted:
        options = "mode=1777"
        if spec.get("sizeLimit"):
            options += f",size={int(parse_quantity(spec['sizeLimit']))}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True)
        ctx.mounted.append(path)
    return path


def teardown_all(ctx: VolumeContext) -> None:
    """Unmount the pod's tmpfs emptyDirs before its directory is removed."""
    for path in ctx.mounted:
        result = subprocess.run(["umount", "-l", path], capture_output=True, text=True)
        if result.returncode != 0:
            log.warning("unmounting %s: %s", path, result.stderr.strip())
    ctx.mounted.clear()
