"""downwardAPI: pod fields and container resources as files."""

from __future__ import annotations

from tinykube.kubelet.env import EnvError, EnvSources, field_ref, resource_ref
from tinykube.kubelet.volumes.base import Obj, VolumeContext, VolumeError, volume_dir, write_payload

DEFAULT_MODE = 0o644


def payload(items: list[Obj], ctx: VolumeContext, default_mode: int) -> dict[str, tuple[bytes, int]]:
    src = EnvSources(pod_ip=ctx.pod_ip, host_ip=ctx.host_ip, node_allocatable=ctx.node_allocatable)
    out: dict[str, tuple[bytes, int]] = {}
    containers = (ctx.pod.get("spec") or {}).get("containers") or [{}]
    for item in items:
        try:
            if "fieldRef" in item:
                value = field_ref(ctx.pod, item["fieldRef"].get("fieldPath", ""), src)
            elif "resourceFieldRef" in item:
                value = resource_ref(ctx.pod, containers[0], item["resourceFieldRef"], src)
            else:
                continue
        except EnvError as exc:
            raise VolumeError(str(exc)) from None
        out[item.get("path", "")] = (value.encode(), int(item.get("mode", default_mode)))
    return out


async def setup(volume: Obj, ctx: VolumeContext) -> str:
    spec = volume["downwardAPI"]
    path = volume_dir(ctx, "downward-api", volume["name"])
    write_payload(path, payload(spec.get("items") or [], ctx, int(spec.get("defaultMode", DEFAULT_MODE))))
    return path
