"""Hollow nodes: many simulated kubelets in one process (like KWOK or kubemark).

Each hollow node is a real Node object (capacity, allocatable, the four upstream
conditions with kubelet's reasons, addresses, nodeInfo, daemonEndpoints) whose Lease in
``kube-node-lease`` is renewed every ``lease_interval`` seconds by one batched loop for all
nodes. Pods bound to them are seen through one pod informer and driven by a work queue:
after ``start_delay`` a pod becomes Running and Ready (podIP from the node's range, hostIP,
startTime, container statuses); a pod being deleted is removed with
``gracePeriodSeconds=0``. Nothing runs: no processes, no network.

Failure injection: ``stop_heartbeat(name)`` freezes a node's Lease and status (the node
lifecycle controller then marks it NotReady), and a pod exits with a code after running for
a while, either on request (``exit_pod``) or from its annotations
``hollow.tinykube.dev/exit-code`` and ``hollow.tinykube.dev/exit-after`` (seconds).

Addresses are on loopback only: the node InternalIP is ``node_ip`` (127.0.0.1) and pod IPs
come from 127.64.0.0/10, one /24 per node, so no traffic can ever be routed off the host.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tinykube import aio
from tinykube.api import meta, pods
from tinykube.api.errors import ApiError
from tinykube.client.controller import Controller
from tinykube.client.informer import Informer
from tinykube.client.rest import Client
from tinykube.client.workqueue import WorkQueue

log = logging.getLogger(__name__)
Object = dict[str, Any]

KUBELET_VERSION = "v1.32.0"
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_DURATION = 40  # seconds, as the kubelet's nodeLeaseDurationSeconds
EXIT_CODE_ANNOTATION = "hollow.tinykube.dev/exit-code"
EXIT_AFTER_ANNOTATION = "hollow.tinykube.dev/exit-after"
HOLLOW_LABEL = "tinykube.dev/hollow"
LEASE_CONCURRENCY = 64
POD_WORKERS = 16


def node_pod_cidr(index: int) -> str:
    """A /24 on loopback per node (127.64.0.0 - 127.255.255.0)."""
    if index >= 192 * 256:
        raise ValueError("at most 49152 hollow nodes fit in the loopback pod range")
    return f"127.{64 + index // 256}.{index % 256}.0/24"


def pod_ip(cidr: str, slot: int) -> str:
    base = cidr.rsplit(".", 1)[0]
    return f"{base}.{slot % 254 + 1}"


def _micro_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_conditions(now: str, ready: bool = True) -> list[Object]:
    """The kubelet's four node conditions, with upstream's reasons and messages."""
    def cond(type_: str, status: str, reason: str, message: str) -> Object:
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now}
    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
             "kubelet has sufficient memory available"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID",
             "kubelet has sufficient PID available"),
        cond("Ready", "True" if ready else "False",
             "KubeletReady" if ready else "KubeletNotReady",
             "kubelet is posting ready status" if ready else "container runtime is down"),
    ]


def parse_taint(text: str) -> Object:
    """``key=value:Effect`` or ``key:Effect`` (kubectl taint syntax)."""
    spec, sep, effect = text.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(f"invalid taint {text!r}: expected key[=value]:NoSchedule|"
                         "PreferNoSchedule|NoExecute")
    key, _, value = spec.partition("=")
    if not key:
        raise ValueError(f"invalid taint {text!r}: empty key")
    taint: Object = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


@dataclass
class NodeTemplate:
    """What every hollow node of one group looks like."""

    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    ephemeral_storage: str = "100Gi"
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[Object] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)  # other extended resources

    @classmethod
    def from_capacity(cls, capacity: dict[str, Any]) -> NodeTemplate:
        """A template from a ``{resource: quantity}`` map (a kubelet-style capacity)."""
        known = ("cpu", "memory", "pods", "ephemeral-storage", "nvidia.com/gpu")
        defaults = cls()
        return cls(cpu=str(capacity.get("cpu", defaults.cpu)),
                   memory=str(capacity.get("memory", defaults.memory)),
                   pods=int(capacity.get("pods", defaults.pods)),
                   ephemeral_storage=str(capacity.get("ephemeral-storage",
                                                      defaults.ephemeral_storage)),
                   gpus=int(capacity.get("nvidia.com/gpu", 0)),
                   extra={k: str(v) for k, v in capacity.items() if k not in known})

    def capacity(self) -> dict[str, str]:
        out = {"cpu": self.cpu, "memory": self.memory, "pods": str(self.pods),
               "ephemeral-storage": self.ephemeral_storage, **self.extra}
        if self.gpus:
            out["nvidia.com/gpu"] = str(self.gpus)
        return out


def node_object(name: str, index: int, template: NodeTemplate, node_ip: str = "127.0.0.1",
                now: str | None = None) -> Object:
    """A Node as a kubelet registers it (status included)."""
    stamp = now or meta.now()
    labels = {
        "beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "hollow",
        HOLLOW_LABEL: "true", **template.labels,
    }
    cidr = node_pod_cidr(index)
    capacity = template.capacity()
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr],
                 **({"taints": list(template.taints)} if template.taints else {})},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": node_conditions(stamp),
            "addresses": [{"type": "InternalIP", "address": node_ip},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                "bootID": str(uuid.uuid4()),
                "kernelVersion": "hollow", "osImage": "tinykube hollow node",
                "containerRuntimeVersion": "hollow://1.0.0",
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux", "architecture": "amd64",
            },
            "images": [],
        },
    }


def lease_object(node: Object) -> Object:
    name = meta.name(node)
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE,
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                          "uid": meta.uid(node)}]},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": NODE_LEASE_DURATION,
                 "renewTime": _micro_now()},
    }


def running_status(pod: Object, node: Object, ip: str, now: str) -> Object:
    """A Running, Ready pod status as the kubelet reports it."""
    host_ip = next((a["address"] for a in (node.get("status") or {}).get("addresses") or ()
                    if a.get("type") == "InternalIP"), "")
    started = (pod.get("status") or {}).get("startTime") or now

    def cond(type_: str) -> Object:
        return {"type": type_, "status": "True", "lastProbeTime": None,
                "lastTransitionTime": now}
    return {
        "phase": "Running",
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                       cond("ContainersReady"), cond("PodScheduled")],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": started,
        "qosClass": pods.qos_class(pod),
        "containerStatuses": [{
            "name": c.get("name", ""), "image": c.get("image", ""),
            "imageID": f"hollow://{c.get('image', '')}",
            "containerID": f"hollow://{uuid.uuid4().hex}",
            "ready": True, "started": True, "restartCount": 0,
            "state": {"running": {"startedAt": now}}, "lastState": {},
        } for c in pods.containers(pod)],
    }


def terminated_status(pod: Object, exit_code: int, now: str) -> Object:
    """The pod after its containers exited with ``exit_code`` (restartPolicy decides)."""
    policy = pods.spec(pod).get("restartPolicy") or "Always"
    old = pod.get("status") or {}
    phase = "Succeeded" if exit_code == 0 else "Failed"
    reason = "Completed" if exit_code == 0 else "Error"
    statuses = []
    for cs in old.get("containerStatuses") or ():
        started = ((cs.get("state") or {}).get("running") or {}).get("startedAt", now)
        statuses.append({**cs, "ready": False, "started": False, "state": {"terminated": {
            "exitCode": exit_code, "reason": reason, "startedAt": started, "finishedAt": now,
            "containerID": cs.get("containerID", "")}}})
    conditions = [
        {**c, "status": "False", "reason": "PodCompleted" if exit_code == 0 else "PodFailed",
         "lastTransitionTime": now} if c.get("type") in ("Ready", "ContainersReady") else c
        for c in old.get("conditions") or ()]
    if policy == "Always" or (policy == "OnFailure" and exit_code != 0):
        # The kubelet would restart it: report the restart and keep it running.
        for cs in statuses:
            cs["restartCount"] = int(cs.get("restartCount") or 0) + 1
            cs["lastState"] = cs.pop("state")
            cs["state"] = {"running": {"startedAt": now}}
            cs["ready"] = cs["started"] = True
        return {**old, "containerStatuses": statuses}
    return {**old, "phase": phase, "conditions": conditions, "containerStatuses": statuses}


class HollowNodes(Controller):
    """Register ``count`` simulated nodes and act as their kubelets."""

    name = "hollow-nodes"
    workers = POD_WORKERS

    def __init__(self, client: Client, count: int = 1,
                 capacity: NodeTemplate | dict[str, Any] | None = None,
                 labels: dict[str, str] | None = None, taints: list[Object] | None = None,
                 name_prefix: str = "hollow-node-", start_delay: float = 0.0,
                 lease_interval: float = 10.0, status_report_interval: float = 300.0,
                 node_ip: str = "127.0.0.1", first_index: int = 0,
                 delete_on_stop: bool = False, manage_pods: bool = True) -> None:
        super().__init__(queue=WorkQueue("hollow-nodes", base_delay=0.05, max_delay=10))
        self.client = client
        if isinstance(capacity, dict):
            capacity = NodeTemplate.from_capacity(capacity)
        self.template = copy.deepcopy(capacity) if capacity is not None else NodeTemplate()
        if labels:
            self.template.labels = {**self.template.labels, **labels}
        if taints:
            self.template.taints = [*self.template.taints, *taints]
        self.count = count
        self.name_prefix = name_prefix
        self.start_delay = start_delay
        self.lease_interval = lease_interval
        self.status_report_interval = status_report_interval
        self.node_ip = node_ip
        self.first_index = first_index
        self.delete_on_stop = delete_on_stop
        self.manage_pods = manage_pods
        self.names = [f"{name_prefix}{first_index + i}" for i in range(count)]
        self.nodes: dict[str, Object] = {}
        self._cidrs = {n: node_pod_cidr(first_index + i) for i, n in enumerate(self.names)}
        self._next_slot: dict[str, int] = dict.fromkeys(self.names, 0)
        self._leases: dict[str, Object] = {}
        self._silenced: set[str] = set()
        self._exit_requests: dict[str, int] = {}
        self._running_since: dict[str, float] = {}
        # One watch for every hollow node: pods bound to some node (ours are picked out
        # in the handlers), so unscheduled pods never reach this process.
        self.pod_informer = Informer(client.resource("pods"), field_selector="spec.nodeName!=")
        # Our own Nodes, to notice when someone else rewrote their conditions (the node
        # lifecycle controller marks a silent node Unknown): a live kubelet posts its
        # status again at its next sync, as upstream's does.
        self.node_informer = Informer(client.resource("nodes"),
                                      label_selector=f"{HOLLOW_LABEL}=true")
        self._stale: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.started_pods = 0

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Register every node and its Lease, then start heartbeats and the pod workers."""
        await self._ensure_lease_namespace()
        sem = asyncio.Semaphore(LEASE_CONCURRENCY)
        await asyncio.gather(*(self._register(i, name, sem) for i, name in enumerate(self.names)))
        if self.manage_pods:
            self.pod_informer.add_handlers(self._on_pod, lambda old, new: self._on_pod(new),
                                           self._on_pod_gone)
            await self.pod_informer.start()
            self._tasks.append(asyncio.create_task(self.run(), name="hollow-pod-workers"))
        if self.lease_interval > 0:
            self.node_informer.add_handlers(on_update=lambda _old, new: self._on_node(new))
            await self.node_informer.start()
            self._tasks.append(asyncio.create_task(self._heartbeat_loop(),
                                                   name="hollow-heartbeats"))

    async def stop(self) -> None:
        self.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.pod_informer.stop()
        await self.node_informer.stop()
        if self.delete_on_stop:
            sem = asyncio.Semaphore(LEASE_CONCURRENCY)
            await asyncio.gather(*(self._delete_node(n, sem) for n in self.names))

    async def _ensure_lease_namespace(self) -> None:
        try:
            await self.client.resource("namespaces").create(
                {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": NODE_LEASE_NAMESPACE}})
        except ApiError as exc:
            if exc.code != 409:
                raise

    async def _register(self, index: int, name: str, sem: asyncio.Semaphore) -> None:
        body = node_object(name, self.first_index + index, self.template, self.node_ip)
        nodes = self.client.resource("nodes")
        async with sem:
            try:
                created = await nodes.create(body)
            except ApiError as exc:
                if exc.code != 409:
                    raise
                current = await nodes.get(name)
                created = await nodes.update({**current, "metadata": {
                    **current["metadata"], "labels": body["metadata"]["labels"]},
                    "spec": {**(current.get("spec") or {}), **body["spec"]}})
                created = await nodes.patch(name, {"status": body["status"]},
                                            subresource="status", patch_type="merge")
            if not (created.get("status") or {}).get("allocatable"):
                # Some servers drop status on create: report it like a kubelet does.
                created = await nodes.patch(name, {"status": body["status"]},
                                            subresource="status", patch_type="merge")
            self.nodes[name] = created
            await self._renew_lease(name)

    async def _delete_node(self, name: str, sem: asyncio.Semaphore) -> None:
        async with sem:
            try:
                await self.client.resource("nodes").delete(name)
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("deleting hollow node %s: %s", name, exc)

    # -- heartbeats ----------------------------------------------------------------------

    async def _renew_lease(self, name: str) -> None:
        leases = self.client.resource("leases", "coordination.k8s.io")
        lease = self._leases.get(name)
        try:
            if lease is None:
                try:
                    lease = await leases.create(lease_object(self.nodes[name]),
                                                namespace=NODE_LEASE_NAMESPACE)
                except ApiError as exc:
                    if exc.code != 409:
                        raise
                    lease = await leases.get(name, namespace=NODE_LEASE_NAMESPACE)
                    lease = await leases.update({**lease, "spec": {
                        **lease["spec"], "holderIdentity": name, "renewTime": _micro_now()}})
            else:
                lease = await leases.update({**lease, "spec": {**lease["spec"],
                                                               "renewTime": _micro_now()}})
            self._leases[name] = lease
        except ApiError as exc:
            self._leases.pop(name, None)  # re-read it next round
            log.warning("renewing lease of hollow node %s: %s", name, exc)

    def _on_node(self, node: Object) -> None:
        """Route a Node whose Ready condition is no longer ours to the heartbeat loop."""
        name = meta.name(node)
        if name not in self.nodes or name in self._silenced:
            return
        ready = next((c for c in (node.get("status") or {}).get("conditions") or ()
                      if c.get("type") == "Ready"), None)
        if ready is None or ready.get("status") != "True":
            self._stale.add(name)
            self._wake.set()

    async def _report_status(self, name: str) -> None:
        """Post the node's conditions with a fresh heartbeat, as the kubelet does every
        5 minutes, or as soon as they were changed by someone else."""
        now = meta.now()
        fresh = {c["type"]: c for c in node_conditions(now)}
        live_node = self.node_informer.cache.get(name) or self.nodes[name]
        live = {c.get("type"): c.get("status")
                for c in (live_node.get("status") or {}).get("conditions") or ()}
        conditions = []
        for cond in (self.nodes[name].get("status") or {}).get("conditions") or ():
            ours = fresh.get(cond.get("type"), cond)
            posted = {**cond, "status": ours["status"], "reason": ours["reason"],
                      "message": ours["message"], "lastHeartbeatTime": now}
            if live.get(cond.get("type")) != ours["status"]:
                posted["lastTransitionTime"] = now
            conditions.append(posted)
        try:
            self.nodes[name] = await self.client.resource("nodes").patch(
                name, {"status": {"conditions": conditions}}, subresource="status")
        except ApiError as exc:
            log.warning("reporting status of hollow node %s: %s", name, exc)

    async def heartbeat_once(self, report_status: bool = False) -> None:
        """Renew every live node's Lease (and status) with bounded concurrency."""
        pending = iter([n for n in self.names if n not in self._silenced])

        async def worker() -> None:  # a fixed pool of workers, not one task per node
            for name in pending:
                await self._renew_lease(name)
                if report_status:
                    await self._report_status(name)

        await asyncio.gather(*(worker() for _ in range(min(LEASE_CONCURRENCY,
                                                           len(self.names)) or 1)))

    async def _heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_report = loop.time()
        next_beat = loop.time() + self.lease_interval
        while True:
            try:  # a node whose status was overwritten wakes the loop early
                await aio.wait_for(self._wake.wait(), max(0.0, next_beat - loop.time()))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            stale, self._stale = self._stale - self._silenced, set()
            try:
                for name in stale:
                    await self._report_status(name)
            except ConnectionError as exc:
                self._stale |= stale  # retried at the next beat
                log.warning("hollow node status: %s", exc)
            if loop.time() < next_beat:
                continue  # woken early: the Leases are renewed on the regular beat
            next_beat = loop.time() + self.lease_interval
            report = loop.time() - last_report >= self.status_report_interval
            try:
                await self.heartbeat_once(report)
            except ConnectionError as exc:
                log.warning("hollow node heartbeats: %s", exc)
            if report:
                last_report = loop.time()

    # -- failure injection ---------------------------------------------------------------

    def stop_heartbeat(self, name: str) -> None:
        """The node goes silent: no more Lease renewals or status reports."""
        self._silenced.add(name)

    def resume_heartbeat(self, name: str) -> None:
        self._silenced.discard(name)

    def exit_pod(self, namespace: str, name: str, exit_code: int) -> None:
        """Make a running hollow pod's containers exit with ``exit_code``."""
        key = f"{namespace}/{name}"
        self._exit_requests[key] = exit_code
        self.enqueue(key)

    # -- pods ----------------------------------------------------------------------------

    def _ours(self, pod: Object) -> bool:
        node = pods.node_name(pod)
        return bool(node) and node in self.nodes and node not in self._silenced

    def _on_pod(self, pod: Object) -> None:
        if self._ours(pod):
            self.enqueue(meta.key(pod))

    def _on_pod_gone(self, pod: Object) -> None:
        key = meta.key(pod)
        self._running_since.pop(key, None)
        self._exit_requests.pop(key, None)

    async def sync(self, key: Hashable) -> None:
        """Drive one pod: delete if deleting, start when due, exit when asked."""
        pod = self.pod_informer.cache.get(str(key))
        if pod is None or not self._ours(pod):
            return
        ns, name = meta.namespace(pod), meta.name(pod)
        podc = self.client.resource("pods")
        if meta.is_deleting(pod):
            try:
                await podc.delete(name, namespace=ns, grace_period_seconds=0)
            except ApiError as exc:
                if exc.code != 404:
                    raise
            return
        if pods.is_terminal(pod):
            return
        if pods.phase(pod) != "Running":
            await self._start_pod(str(key), pod)
            return
        await self._maybe_exit(str(key), pod)

    async def _start_pod(self, key: str, pod: Object) -> None:
        loop = asyncio.get_running_loop()
        first_seen = self._running_since.setdefault(key, loop.time())
        wait = first_seen + self.start_delay - loop.time()
        if wait > 0:
            self.queue.add_after(key, wait)
            return
        node_name = pods.node_name(pod)
        slot = self._next_slot[node_name]
        self._next_slot[node_name] = slot + 1
        now = meta.now()
        status = running_status(pod, self.nodes[node_name], pod_ip(self._cidrs[node_name], slot),
                                now)
        await self._patch_status(pod, status)
        self.started_pods += 1
        self._running_since[key] = loop.time()
        self._schedule_exit(key, pod)

    def _schedule_exit(self, key: str, pod: Object) -> None:
        annotations = meta.annotations(pod)
        if EXIT_CODE_ANNOTATION in annotations and key not in self._exit_requests:
            try:
                code = int(annotations[EXIT_CODE_ANNOTATION])
                after = float(annotations.get(EXIT_AFTER_ANNOTATION, "0"))
            except ValueError:
                log.warning("pod %s: bad %s annotation", key, EXIT_CODE_ANNOTATION)
                return
            self._exit_requests[key] = code
            self.queue.add_after(key, max(after, 0.001))

    async def _maybe_exit(self, key: str, pod: Object) -> None:
        code = self._exit_requests.get(key)
        if code is None:
            self._schedule_exit(key, pod)
            return
        after = float(meta.annotations(pod).get(EXIT_AFTER_ANNOTATION, "0") or 0)
        since = self._running_since.get(key, 0.0)
        wait = since + after - asyncio.get_running_loop().time()
        if wait > 0:
            self.queue.add_after(key, wait)
            return
        del self._exit_requests[key]
        await self._patch_status(pod, terminated_status(pod, code, meta.now()))

    async def _patch_status(self, pod: Object, status: Object) -> None:
        try:
            await self.client.resource("pods").patch(
                meta.name(pod), {"status": status}, namespace=meta.namespace(pod),
                subresource="status", patch_type="merge")
        except ApiError as exc:
            if exc.code != 404:
                raise

