"""What volume plugins share: the context they run in and the atomic payload writer."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

Obj = dict[str, Any]
Fetch = Callable[[str, str], Awaitable[Obj | None]]  # (resource, name) in the pod's namespace
TokenRequest = Callable[[str, str | None, int], Awaitable[str]]  # (serviceaccount, audience, seconds)


class VolumeError(Exception):
    """A volume cannot be set up yet; the pod waits in ContainerCreating with a FailedMount event."""


@dataclass
class VolumeContext:
    pod: Obj
    pod_dir: str
    fetch: Fetch
    request_token: TokenRequest
    can_mount: bool = False
    host_ip: str = ""
    pod_ip: str = ""
    node_allocatable: dict[str, str] = field(default_factory=dict)
    mounted: list[str] = field(default_factory=list)


def volume_dir(ctx: VolumeContext, plugin: str, name: str) -> str:
    """``<pod dir>/volumes/kubernetes.io~<plugin>/<name>``, upstream's layout."""
    path = os.path.join(ctx.pod_dir, "volumes", f"kubernetes.io~{plugin}", name)
    os.makedirs(path, exist_ok=True)
    return path


def write_payload(target: str, files: dict[str, tuple[bytes, int]]) -> None:
    """Write files the way upstream's AtomicWriter does: a timestamped directory, the
    ``..data`` symlink switched to it in one rename, and one symlink per top-level entry."""
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.time_ns() % 1_000_000_000)
    new_dir = os.path.join(target, stamp)
    os.makedirs(new_dir)
    for rel, (data, mode) in files.items():
        path = os.path.join(new_dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
    tmp_link = os.path.join(target, "..data_tmp")
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(stamp, tmp_link)
    old = os.path.realpath(os.path.join(target, "..data")) if os.path.lexists(os.path.join(target, "..data")) else None
    os.replace(tmp_link, os.path.join(target, "..data"))
    tops = {rel.split("/", 1)[0] for rel in files}
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        if entry not in tops:
            os.unlink(os.path.join(target, entry))
    for top in tops:
        link = os.path.join(target, top)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", top), link)
    if old and os.path.isdir(old) and os.path.basename(old) != stamp:
        shutil.rmtree(old, ignore_errors=True)


def key_to_path_items(data: dict[str, bytes], items: list[Obj] | None, default_mode: int,
                      optional: bool, what: str) -> dict[str, tuple[bytes, int]]:
    """Apply ``items`` (key -> path, mode) to a ConfigMap's or Secret's data."""
    if not items:
        return {k: (v, default_mode) for k, v in data.items()}
    out: dict[str, tuple[bytes, int]] = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f'configmap references non-existent config key: {key}' if what == "configmap"
                              else f'references non-existent secret key: {key}')
        out[item.get("path") or key] = (data[key], int(item.get("mode", default_mode)))
    return out
