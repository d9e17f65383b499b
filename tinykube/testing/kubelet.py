"""pytest fixtures: kubelets on loopback against the ``apiserver`` fixture.

``kubelet_factory(**config_fields)`` starts a :class:`tinykube.kubelet.Kubelet` with free
ports, a temporary root dir and (as root) its own bridge, pod CIDR, Service CIDR and cgroup
parent, so tests never collide with each other or with a real node; everything is stopped and removed
at the end of the test. ``wait_for_pod(client, ns, name, predicate)`` waits on a watch.

``private_network()`` picks the subnets: never one that an address or route on the host
already overlaps (a bridge leaked by a killed run, a benchmark's node, another session's
test), and each is reserved until ``release_network()``, so concurrent sessions on one
machine never share one either.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import subprocess
import tempfile
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest_asyncio

from tinykube import aio
from tinykube.api.errors import ApiError
from tinykube.kubelet import Kubelet, KubeletConfig
from tinykube.kubelet.runtime.cgroups import CgroupManager
from tinykube.kubelet.runtime.network import remove_bridge

Factory = Callable[..., Awaitable[Kubelet]]


RESERVATIONS = "/run/tinykube/test-networks"
SUBNETS = 250  # n in 10.250.n.0/24 (pods) and 10.251.n.0/28 (Services), 1..250


def private_network() -> dict[str, str]:
    """A bridge name and address ranges private to one test.

    A random subnet alone is not private: when another bridge already holds it (leaked by a
    killed run, a benchmark's node, a concurrent session's test), the kernel keeps routing
    it through the older bridge, so the node cannot reach the new bridge's pods and every
    probe times out. So the search starts at a random ``n`` and skips any subnet an address
    or route on the host overlaps or another live process has reserved; the one returned is
    reserved (a file, like host-local IPAM's, stale once its process is gone) until
    :func:`release_network`.
    """
    taken = _host_networks()
    start = secrets.randbelow(SUBNETS)
    for i in range(SUBNETS):
        n = (start + i) % SUBNETS + 1
        net = {"bridge": f"tkt{secrets.token_hex(4)}", "pod_cidr": f"10.250.{n}.0/24",
               "service_cidr": f"10.251.{n}.0/28"}
        if _in_use(net, taken) or not _reserve(n):
            continue
        return net
    raise RuntimeError("no free 10.250.x.0/24 subnet for a test node: every one is routed or reserved")


def private_cgroup_parent(net: dict[str, str]) -> str:
    """A cgroup parent as private as the network. Under the shared ``tinykube/<node>`` two
    sessions' kubelets named alike share pod cgroups whenever the pod uid is the same (a
    static pod's uid is its manifest's hash), and one kills the other's pod with its own."""
    return f"tinykube-test/{net['bridge']}"


def remove_private_cgroup_parent(net: dict[str, str]) -> None:
    """Remove the (empty, once its kubelets stopped) cgroups of ``private_cgroup_parent``."""
    for path in CgroupManager(private_cgroup_parent(net)).paths(""):
        try:
            os.rmdir(path)
        except OSError:
            pass  # never created (not root), or a kubelet did not stop: leave it for the warning


def release_network(net: dict[str, str]) -> None:
    """Give up the reservation ``private_network`` made (once the bridge is gone)."""
    path = _reservation(_subnet_index(net))
    if _owner(path) == os.getpid():
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _subnet_index(net: dict[str, str]) -> int:
    return int(net["pod_cidr"].split(".")[2])


def _reservation(n: int) -> str:
    return os.path.join(RESERVATIONS, str(n))


def _owner(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reserve(n: int) -> bool:
    """Reserve subnet ``n`` for this process; False when a live process holds it. Where the
    reservations cannot be written (not root) it is not reserved, only checked."""
    path = _reservation(n)
    try:
        os.makedirs(RESERVATIONS, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        owner = _owner(path)
        if owner is None or _alive(owner):
            return False  # held (or being written right now)
        try:
            os.unlink(path)  # its process is gone
        except FileNotFoundError:
            pass
        return _reserve(n)
    except OSError:
        return True
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpid()}\n")
    return True


def _host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 address (as a /32) and route destination on the host, default excepted."""
    found: list[ipaddress.IPv4Network] = []
    for args in (["-4", "-o", "addr", "show"], ["-4", "route", "show", "table", "all"]):
        try:
            out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10,
                                 check=False).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        for line in out.splitlines():
            words = line.split()
            if args[2] == "addr":
                words = words[words.index("inet") + 1:] if "inet" in words else []
                words = [words[0].split("/")[0]] if words else []
            elif words and words[0] in ("local", "broadcast", "unicast", "unreachable", "blackhole",
                                        "prohibit", "throw", "anycast", "multicast", "nat"):
                words = words[1:]
            if not words or words[0] == "default":
                continue
            try:
                found.append(ipaddress.IPv4Network(words[0], strict=False))
            except ValueError:
                continue
    return found


def _in_use(net: dict[str, str], taken: list[ipaddress.IPv4Network]) -> bool:
    """Whether an address or a route as specific as ours overlaps one of the ranges (a less
    specific one, such as 10.0.0.0/8 via a gateway, loses to the bridge's own route)."""
    for cidr in (net["pod_cidr"], net["service_cidr"]):
        ours = ipaddress.IPv4Network(cidr)
        if any(other.prefixlen >= ours.prefixlen and other.overlaps(ours) for other in taken):
            return True
    return False


@pytest_asyncio.fixture
async def kubelet_factory(apiserver: Any) -> AsyncIterator[Factory]:
    started: list[Kubelet] = []
    networks: list[dict[str, str]] = []
    tmp = tempfile.TemporaryDirectory(prefix="tinykube-kubelet-")

    async def ensure_service_account(namespace: str = "default") -> None:
        """What the serviceaccount and root-ca-cert-publisher controllers would create."""
        async with apiserver.client() as client:
            objects = [("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                            "metadata": {"name": "default"}}),
                       ("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "kube-root-ca.crt"},
                                       "data": {"ca.crt": getattr(apiserver.server, "ca_pem", "")}})]
            for resource, obj in objects:
                try:
                    await client.resource(resource).create(obj, namespace=namespace)
                except ApiError as exc:
                    if exc.code != 409:
                        raise

    async def start(node_name: str = "node-1", **fields: Any) -> Kubelet:
        await ensure_service_account()
        net = private_network()
        networks.append(net)
        defaults: dict[str, Any] = dict(root_dir=f"{tmp.name}/{node_name}", port=0, healthz_port=0,
                                        node_status_update_frequency=1.0, remove_bridge_on_stop=True,
                                        cluster_dns=["10.96.0.10"], cgroup_parent=private_cgroup_parent(net),
                                        **net)
        defaults.update(fields)
        if "client" not in defaults and "kubeconfig" not in defaults:
            defaults["client"] = apiserver.client()
        kubelet = Kubelet(KubeletConfig(node_name=node_name, **defaults))
        started.append(kubelet)  # stopped at the end even if it fails to start
        await kubelet.start()
        return kubelet

    try:
        yield start
    finally:
        errors: list[BaseException] = []
        for kubelet in reversed(started):
            try:
                await kubelet.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others and remove their bridges all the same
                errors.append(exc)
            client = kubelet.config.client
            if client is not None:
                await client.close()
        for net in networks:
            if os.path.exists(f"/sys/class/net/{net['bridge']}"):
                await remove_bridge(net["bridge"])  # a kubelet that failed to stop left it
            remove_private_cgroup_parent(net)
            release_network(net)
        tmp.cleanup()
        if errors:
            raise errors[0]


async def wait_for_pod(client: Any, namespace: str, name: str, predicate: Callable[[dict], bool],
                       timeout: float = 20.0) -> dict:
    """The pod once ``predicate(pod)`` holds, watching for changes; raises TimeoutError."""
    pods = client.resource("pods")

    async def watch() -> dict:
        while True:
            listed = await pods.list(namespace=namespace, field_selector=f"metadata.name={name}")
            for pod in listed.get("items", []):
                if predicate(pod):
                    return pod
            rv = listed["metadata"]["resourceVersion"]
            async for _type, pod in pods.watch(namespace=namespace, field_selector=f"metadata.name={name}",
                                               resource_version=rv, timeout_seconds=int(timeout) + 1):
                if _type in ("ADDED", "MODIFIED") and predicate(pod):
                    return pod

    return await aio.wait_for(watch(), timeout)


async def logged_line(log_path: str, predicate: Callable[[bytes], bool], timeout: float = 10.0) -> bytes:
    """The first line of a container's log that ``predicate`` accepts, following the log
    as the container writes it; raises TimeoutError."""
    from tinykube.kubelet.runtime.logs import follow_records

    async def follow() -> bytes:
        async for rec in follow_records(log_path, 0, asyncio.Event()):
            if predicate(rec.content):
                return rec.content
        raise EOFError(log_path)

    return await aio.wait_for(follow(), timeout)
