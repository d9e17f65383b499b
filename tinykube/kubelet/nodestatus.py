"""The Node object a kubelet registers and the status it keeps posting.

Capacity comes from the machine (cpu count, MemTotal, the root dir's filesystem, maxPods)
unless overridden; allocatable subtracts upstream's default hard eviction thresholds
(memory.available<100Mi, nodefs.available<10%). Conditions carry upstream's reasons and
messages (KubeletReady "kubelet is posting ready status", KubeletHasSufficientMemory, ...).
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

from tinykube.api import meta

Obj = dict[str, Any]
KUBELET_VERSION = "v1.32.0"
EVICTION_MEMORY = 100 * 1024 * 1024
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    out = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * 1024
    return out


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()


def machine_capacity(root_dir: str, max_pods: int, overrides: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(capacity, allocatable) as quantity strings."""
    mem = meminfo().get("MemTotal", 0)
    try:
        st = os.statvfs(root_dir)
        disk = st.f_blocks * st.f_frsize
    except OSError:
        disk = 0
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{mem // 1024}Ki",
                "ephemeral-storage": f"{disk // 1024}Ki", "pods": str(max_pods),
                "hugepages-1Gi": "0", "hugepages-2Mi": "0"}
    allocatable = dict(capacity)
    allocatable["memory"] = f"{max(0, mem - EVICTION_MEMORY) // 1024}Ki"
    allocatable["ephemeral-storage"] = str(int(disk * 0.9))
    capacity.update(overrides)
    for key, value in overrides.items():
        allocatable[key] = value
    return capacity, allocatable


def node_info(runtime_version: str) -> Obj:
    return {
        "machineID": _read("/etc/machine-id"),
        "systemUUID": _read("/sys/class/dmi/id/product_uuid") or _read("/etc/machine-id"),
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": "linux" if platform.system() == "Linux" else platform.system().lower(),
        "architecture": ARCH.get(platform.machine(), platform.machine()),
    }


def pressure_conditions(root_dir: str) -> list[Obj]:
    """MemoryPressure, DiskPressure, PIDPressure from the eviction manager's default signals."""
    mem = meminfo()
    available = mem.get("MemAvailable", EVICTION_MEMORY + 1)
    try:
        st = os.statvfs(root_dir)
        disk_free = st.f_bavail / st.f_blocks if st.f_blocks else 1.0
    except OSError:
        disk_free = 1.0
    pid_max = int(_read("/proc/sys/kernel/pid_max", "32768") or 32768)
    threads = _count_threads()
    conds = []
    conds.append(_pressure("MemoryPressure", available < EVICTION_MEMORY,
                           ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
                           ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")))
    conds.append(_pressure("DiskPressure", disk_free < 0.10,
                           ("KubeletHasDiskPressure", "kubelet has disk pressure"),
                           ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")))
    conds.append(_pressure("PIDPressure", threads > 0.9 * pid_max,
                           ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
                           ("KubeletHasSufficientPID", "kubelet has sufficient PID available")))
    return conds


def _count_threads() -> int:
    text = _read("/proc/loadavg")
    try:
        return int(text.split()[3].split("/")[1])
    except (IndexError, ValueError):
        return 0


def _pressure(kind: str, under: bool, bad: tuple[str, str], good: tuple[str, str]) -> Obj:
    reason, message = bad if under else good
    return {"type": kind, "status": "True" if under else "False", "reason": reason, "message": message}


def ready_condition() -> Obj:
    return {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}


def merge_node_conditions(old: list[Obj], new: list[Obj], now: str) -> list[Obj]:
    """Heartbeat every condition; move lastTransitionTime only on a status change."""
    by_type = {c.get("type"): c for c in old}
    out = []
    for cond in new:
        prev = by_type.get(cond["type"])
        transition = prev.get("lastTransitionTime") if prev and prev.get("status") == cond["status"] else now
        out.append({**cond, "lastHeartbeatTime": now, "lastTransitionTime": transition or now})
    return out


def node_labels(node_name: str, extra: dict[str, str]) -> dict[str, str]:
    arch = ARCH.get(platform.machine(), platform.machine())
    osname = "linux" if platform.system() == "Linux" else platform.system().lower()
    return {"beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": osname,
            "kubernetes.io/arch": arch, "kubernetes.io/hostname": node_name, "kubernetes.io/os": osname, **extra}


def initial_node(node_name: str, labels: dict[str, str], taints: list[Obj], pod_cidr: str) -> Obj:
    node: Obj = {"apiVersion": "v1", "kind": "Node",
                 "metadata": {"name": node_name, "labels": labels,
                              "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                              "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                 "spec": {}}
    if taints:
        node["spec"]["taints"] = taints
    if pod_cidr:
        node["spec"]["podCIDR"] = pod_cidr
        node["spec"]["podCIDRs"] = [pod_cidr]
    return node


def node_status(*, old: Obj, capacity: dict[str, str], allocatable: dict[str, str], node_ip: str,
                hostname: str, port: int, runtime_version: str, root_dir: str, images: list[Obj]) -> Obj:
    now = meta.now()
    conds = pressure_conditions(root_dir) + [ready_condition()]
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": merge_node_conditions((old.get("status") or {}).get("conditions") or [], conds, now),
        "addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": node_info(runtime_version),
        "images": images,
    }


def hostname() -> str:
    return socket.gethostname()
