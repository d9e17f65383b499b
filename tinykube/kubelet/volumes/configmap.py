"""configMap: the ConfigMap's keys as files (``items`` pick and rename, ``defaultMode``)."""

from __future__ import annotations

import base64

from tinykube.kubelet.volumes.base import Obj, VolumeContext, VolumeError, key_to_path_items, volume_dir, write_payload

DEFAULT_MODE = 0o644


def payload(cm: Obj | None, spec: Obj) -> dict[str, tuple[bytes, int]]:
    optional = bool(spec.get("optional"))
    if cm is None:
        if optional:
            return {}
        raise VolumeError(f'configmap "{spec.get("name", "")}" not found')
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return key_to_path_items(data, spec.get("items"), int(spec.get("defaultMode", DEFAULT_MODE)), optional, "configmap")


async def setup(volume: Obj, ctx: VolumeContext) -> str:
    spec = volume["configMap"]
    path = volume_dir(ctx, "configmap", volume["name"])
    write_payload(path, payload(await ctx.fetch("configmaps", spec.get("name", "")), spec))
    return path
