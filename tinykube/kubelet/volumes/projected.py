"""projected: several sources in one directory, as the service account volume uses
(a bound token from the TokenRequest API, the ``kube-root-ca.crt`` ConfigMap, the namespace)."""

from __future__ import annotations

from tinykube.api.errors import ApiError
from tinykube.kubelet.volumes import configmap, downwardapi, secret
from tinykube.kubelet.volumes.base import Obj, VolumeContext, VolumeError, volume_dir, write_payload

DEFAULT_MODE = 0o644
DEFAULT_TOKEN_SECONDS = 3607


async def payload(spec: Obj, ctx: VolumeContext) -> dict[str, tuple[bytes, int]]:
    mode = int(spec.get("defaultMode", DEFAULT_MODE))
    out: dict[str, tuple[bytes, int]] = {}
    for source in spec.get("sources") or []:
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            sa = (ctx.pod.get("spec") or {}).get("serviceAccountName") or "default"
            try:
                token = await ctx.request_token(sa, sat.get("audience"),
                                                int(sat.get("expirationSeconds", DEFAULT_TOKEN_SECONDS)))
            except (ApiError, ConnectionError) as exc:
                raise VolumeError(f"failed to fetch token: {exc}") from None
            out[sat.get("path", "token")] = (token.encode(), mode)
        elif "configMap" in source:
            cm_spec = {"defaultMode": mode, **source["configMap"]}
            out.update(configmap.payload(await ctx.fetch("configmaps", cm_spec.get("name", "")), cm_spec))
        elif "secret" in source:
            s_spec = {"defaultMode": mode, **source["secret"]}
            out.update(secret.payload(await ctx.fetch("secrets", s_spec.get("name", "")), s_spec, "name"))
        elif "downwardAPI" in source:
            out.update(downwardapi.payload(source["downwardAPI"].get("items") or [], ctx, mode))
    return out


async def setup(volume: Obj, ctx: VolumeContext) -> str:
    path = volume_dir(ctx, "projected", volume["name"])
    write_payload(path, await payload(volume["projected"], ctx))
    return path
