"""secret: the Secret's keys as files, decoded from base64."""

from __future__ import annotations

import base64

from tinykube.kubelet.volumes.base import Obj, VolumeContext, VolumeError, key_to_path_items, volume_dir, write_payload

DEFAULT_MODE = 0o644


def payload(secret: Obj | None, spec: Obj, name_field: str = "secretName") -> dict[str, tuple[bytes, int]]:
    optional = bool(spec.get("optional"))
    if secret is None:
        if optional:
            return {}
        raise VolumeError(f'secret "{spec.get(name_field, "")}" not found')
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    return key_to_path_items(data, spec.get("items"), int(spec.get("defaultMode", DEFAULT_MODE)), optional, "secret")


async def setup(volume: Obj, ctx: VolumeContext) -> str:
    spec = volume["secret"]
    path = volume_dir(ctx, "secret", volume["name"])
    write_payload(path, payload(await ctx.fetch("secrets", spec.get("secretName", "")), spec))
    return path
