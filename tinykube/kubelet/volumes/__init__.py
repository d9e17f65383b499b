"""Volume plugins: each turns one ``spec.volumes[]`` entry into a directory on the node.

One module per volume type, each with ``async setup(volume, ctx) -> host path``; the
registry maps the API field name (``emptyDir``, ``configMap``, ...) to it, as upstream's
volume plugin manager does. Containers then bind-mount those paths at their mountPaths.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from tinykube.api.errors import ApiError

from tinykube.kubelet.volumes import configmap, downwardapi, emptydir, hostpath, projected, pvc, secret
from tinykube.kubelet.volumes.base import Obj, VolumeContext, VolumeError, volume_dir

Plugin = Callable[[Obj, VolumeContext], Awaitable[str]]

PLUGINS: dict[str, Plugin] = {
    "emptyDir": emptydir.setup,
    "configMap": configmap.setup,
    "secret": secret.setup,
    "downwardAPI": downwardapi.setup,
    "projected": projected.setup,
    "hostPath": hostpath.setup,
    "persistentVolumeClaim": pvc.setup,
}


def plugin_name(volume: Obj) -> str | None:
    return next((k for k in PLUGINS if k in volume), None)


async def setup_volume(volume: Obj, ctx: VolumeContext) -> str:
    kind = plugin_name(volume)
    if kind is None:
        raise VolumeError(f"unsupported volume type in volume \"{volume.get('name', '')}\"")
    return await PLUGINS[kind](volume, ctx)


async def setup_volumes(volumes: list[Obj], ctx: VolumeContext) -> dict[str, str]:
    """Set up every volume; returns name -> host path. Raises VolumeError naming the volume."""
    out: dict[str, str] = {}
    for vol in volumes:
        try:
            out[vol["name"]] = await setup_volume(vol, ctx)
        except VolumeError as exc:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{vol["name"]}" : {exc}') from None
        except (ApiError, ConnectionError) as exc:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{vol["name"]}" : {exc}') from None
    return out


def teardown_volumes(ctx: VolumeContext) -> None:
    emptydir.teardown_all(ctx)


__all__ = ["PLUGINS", "VolumeContext", "VolumeError", "setup_volume", "setup_volumes",
           "teardown_volumes", "volume_dir"]
