"""The per-pod files a runtime bind-mounts into every container: hosts, hostname, resolv.conf."""

from __future__ import annotations

import os

from tinykube.kubelet.runtime.interface import PodSandboxConfig

# file name in the sandbox directory -> path inside the container
POD_FILES = {"hosts": "/etc/hosts", "hostname": "/etc/hostname", "resolv.conf": "/etc/resolv.conf"}

HOSTS_HEADER = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


def hosts_file(cfg: PodSandboxConfig, pod_ip: str) -> str:
    """The kubelet-managed /etc/hosts: localhost entries, the pod's own name, HostAliases."""
    text = HOSTS_HEADER
    hostname = cfg.hostname or cfg.name
    if pod_ip:
        if cfg.subdomain:
            fqdn = f"{hostname}.{cfg.subdomain}.{cfg.namespace}.svc.{cfg.cluster_domain}"
            text += f"{pod_ip}\t{fqdn}\t{hostname}\n"
        else:
            text += f"{pod_ip}\t{hostname}\n"
    if cfg.host_aliases:
        text += "\n# Entries added by HostAliases.\n"
        for ip, names in cfg.host_aliases:
            text += f"{ip}\t" + "\t".join(names) + "\n"
    return text


def resolv_conf(cfg: PodSandboxConfig) -> str:
    lines = [f"nameserver {s}" for s in cfg.dns_servers]
    if cfg.dns_searches:
        lines.append("search " + " ".join(cfg.dns_searches))
    if cfg.dns_options:
        lines.append("options " + " ".join(cfg.dns_options))
    return "\n".join(lines) + "\n"


def write_pod_files(directory: str, cfg: PodSandboxConfig, pod_ip: str) -> None:
    os.makedirs(directory, exist_ok=True)
    contents = {
        "hosts": hosts_file(cfg, pod_ip),
        "hostname": (cfg.hostname or cfg.name) + "\n" if not cfg.host_network else _host_file("/etc/hostname"),
        "resolv.conf": resolv_conf(cfg) if cfg.dns_servers or cfg.dns_searches else _host_file("/etc/resolv.conf"),
    }
    if cfg.host_network:
        contents["hosts"] = _host_file("/etc/hosts")
    for name, text in contents.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)


def _host_file(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
