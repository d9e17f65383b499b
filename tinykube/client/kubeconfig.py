"""kubeconfig files: read credentials for a context, write and merge cluster entries.

The format is upstream's ``clientcmd`` v1 Config (clusters, users, contexts,
current-context). ``$KUBECONFIG`` may list several files separated by ``:``; as in kubectl,
the first file that defines a name wins. Relative certificate paths are resolved against the
directory of the file that names them.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, Any]


class KubeconfigError(ValueError):
    """The kubeconfig is missing, malformed or lacks the requested context."""


@dataclass
class Credentials:
    """Everything a client needs to reach one cluster as one user."""

    server: str
    token: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    ca_data: bytes | None = None
    cert_data: bytes | None = None
    key_data: bytes | None = None
    insecure: bool = False
    namespace: str = "default"
    context: str = ""


def default_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def read_config(path: str | os.PathLike[str]) -> Config:
    """One kubeconfig file as a dict (empty config when the file is empty)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a mapping")
    return data


def _absolutize(entry: dict[str, Any], base: Path, fields: tuple[str, ...]) -> None:
    for field in fields:
        value = entry.get(field)
        if value and not os.path.isabs(value):
            entry[field] = str(base / value)


def load_merged(paths: list[Path] | None = None) -> Config:
    """Merge kubeconfig files as kubectl does (first definition of each name wins)."""
    merged: Config = {"clusters": [], "users": [], "contexts": [], "current-context": ""}
    seen: dict[str, set[str]] = {"clusters": set(), "users": set(), "contexts": set()}
    found = False
    for path in paths or default_paths():
        if not path.exists():
            continue
        found = True
        cfg = read_config(path)
        base = path.resolve().parent
        if not merged["current-context"]:
            merged["current-context"] = cfg.get("current-context") or ""
        for section, inner, fields in (
            ("clusters", "cluster", ("certificate-authority",)),
            ("users", "user", ("client-certificate", "client-key", "tokenFile")),
            ("contexts", "context", ()),
        ):
            for item in cfg.get(section) or ():
                name = item.get("name")
                if not name or name in seen[section]:
                    continue
                seen[section].add(name)
                body = dict(item.get(inner) or {})
                _absolutize(body, base, fields)
                merged[section].append({"name": name, inner: body})
    if not found:
        raise KubeconfigError("no kubeconfig found (set --kubeconfig or $KUBECONFIG)")
    return merged


def _named(cfg: Config, section: str, inner: str, name: str) -> dict[str, Any]:
    for item in cfg.get(section) or ():
        if item.get("name") == name:
            return item.get(inner) or {}
    raise KubeconfigError(f'{inner} "{name}" not found in kubeconfig')


def _b64(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None


def credentials_from(cfg: Config, context: str | None = None) -> Credentials:
    """The credentials of ``context`` (default: current-context) in a parsed config."""
    ctx_name = context or cfg.get("current-context")
    if not ctx_name:
        raise KubeconfigError("kubeconfig has no current-context; pass a context")
    ctx = _named(cfg, "contexts", "context", ctx_name)
    cluster = _named(cfg, "clusters", "cluster", ctx.get("cluster", ""))
    user = _named(cfg, "users", "user", ctx["user"]) if ctx.get("user") else {}
    server = cluster.get("server")
    if not server:
        raise KubeconfigError(f'cluster "{ctx.get("cluster")}" has no server')
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text().strip()
    return Credentials(
        server=server,
        token=token,
        ca_file=cluster.get("certificate-authority"),
        ca_data=_b64(cluster.get("certificate-authority-data")),
        cert_file=user.get("client-certificate"),
        key_file=user.get("client-key"),
        cert_data=_b64(user.get("client-certificate-data")),
        key_data=_b64(user.get("client-key-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        namespace=ctx.get("namespace") or "default",
        context=ctx_name,
    )


def load_kubeconfig(path: str | os.PathLike[str] | None = None,
                    context: str | None = None) -> Credentials:
    """Credentials from one file, or from ``$KUBECONFIG`` / ``~/.kube/config`` merged."""
    paths = [Path(path).expanduser()] if path else None
    if paths and not paths[0].exists():
        raise KubeconfigError(f"kubeconfig {path} does not exist")
    return credentials_from(load_merged(paths), context)


def _encode(data: str | bytes | None) -> str | None:
    if data is None:
        return None
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def build_config(server: str, token: str | None = None, ca: str | bytes | None = None, *,
                 cluster_name: str = "tinykube", user: str = "tinykube-admin",
                 context: str = "tinykube", client_cert: str | bytes | None = None,
                 client_key: str | bytes | None = None, namespace: str | None = None) -> Config:
    """A one-context kubeconfig; ``ca``/``client_cert``/``client_key`` are PEM data."""
    cluster: dict[str, Any] = {"server": server}
    if ca is not None:
        cluster["certificate-authority-data"] = _encode(ca)
    user_body: dict[str, Any] = {}
    if token:
        user_body["token"] = token
    if client_cert is not None:
        user_body["client-certificate-data"] = _encode(client_cert)
    if client_key is not None:
        user_body["client-key-data"] = _encode(client_key)
    ctx: dict[str, Any] = {"cluster": cluster_name, "user": user}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user, "user": user_body}],
        "contexts": [{"name": context, "context": ctx}],
        "current-context": context,
    }


def _write(path: Path, cfg: Config) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(cfg, fh, default_flow_style=False, sort_keys=False)
    os.replace(tmp, path)


def write_kubeconfig(path: str | os.PathLike[str], server: str, token: str | None = None,
                     ca: str | bytes | None = None, cluster_name: str = "tinykube",
                     user: str = "tinykube-admin", context: str = "tinykube",
                     **extra: Any) -> Path:
    """Write a fresh single-context kubeconfig (mode 0600) and return its path."""
    target = Path(path).expanduser()
    _write(target, build_config(server, token, ca, cluster_name=cluster_name, user=user,
                                context=context, **extra))
    return target


def merge_into(path: str | os.PathLike[str], cluster_name: str = "tinykube", *,
               server: str, token: str | None = None, ca: str | bytes | None = None,
               user: str = "tinykube-admin", context: str = "tinykube",
               set_current: bool = True, **extra: Any) -> Path:
    """Add or replace one cluster/user/context in an existing kubeconfig (``~/.kube/config``)."""
    target = Path(path).expanduser()
    cfg = read_config(target) if target.exists() else {"apiVersion": "v1", "kind": "Config"}
    fresh = build_config(server, token, ca, cluster_name=cluster_name, user=user,
                         context=context, **extra)
    for section in ("clusters", "users", "contexts"):
        entry = fresh[section][0]
        kept = [e for e in cfg.get(section) or () if e.get("name") != entry["name"]]
        cfg[section] = [*kept, entry]
    if set_current or not cfg.get("current-context"):
        cfg["current-context"] = context
    _write(target, cfg)
    return target


def remove_from(path: str | os.PathLike[str], cluster_name: str = "tinykube",
                user: str = "tinykube-admin", context: str = "tinykube") -> None:
    """Drop one cluster/user/context from a kubeconfig (``tinykube down``)."""
    target = Path(path).expanduser()
    if not target.exists():
        return
    cfg = read_config(target)
    for section, name in (("clusters", cluster_name), ("users", user), ("contexts", context)):
        cfg[section] = [e for e in cfg.get(section) or () if e.get("name") != name]
    if cfg.get("current-context") == context:
        cfg["current-context"] = ""
    _write(target, cfg)
