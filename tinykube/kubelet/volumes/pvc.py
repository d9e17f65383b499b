"""persistentVolumeClaim: the bound PersistentVolume's directory (hostPath and local PVs)."""

from __future__ import annotations

import os

from tinykube.kubelet.volumes.base import Obj, VolumeContext, VolumeError


async def setup(volume: Obj, ctx: VolumeContext) -> str:
    claim_name = volume["persistentVolumeClaim"].get("claimName", "")
    claim = await ctx.fetch("persistentvolumeclaims", claim_name)
    if claim is None:
        raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found')
    pv_name = (claim.get("spec") or {}).get("volumeName")
    if not pv_name or (claim.get("status") or {}).get("phase") not in (None, "Bound"):
        raise VolumeError(f'PersistentVolumeClaim "{claim_name}" is not bound')
    pv = await ctx.fetch("persistentvolumes", pv_name)
    if pv is None:
        raise VolumeError(f'persistentvolume "{pv_name}" not found')
    spec = pv.get("spec") or {}
    source = spec.get("hostPath") or spec.get("local")
    if not source:
        raise VolumeError(f'persistentvolume "{pv_name}": only hostPath and local volumes are supported')
    path = source.get("path", "")
    if spec.get("hostPath") and (source.get("type") or "DirectoryOrCreate") == "DirectoryOrCreate":
        os.makedirs(path, exist_ok=True)
    if not os.path.exists(path):
        raise VolumeError(f'path "{path}" does not exist')
    return path
