"""The kubelet: the node agent that registers its Node, keeps its Lease and runs its pods.

``Kubelet(KubeletConfig(...))`` with ``start()``/``stop()``. Start-up order follows
upstream: the runtime and the static pods come first (they need no API server: ``tinykube
up`` runs the control plane as static pods; the manifest directory is watched before it is
first read), then the kubelet server (its serving certificate is made meanwhile) and a loop
that registers the Node until the API server answers (every 0.1 s while the connection is
refused, with back-off on other errors); after that the node status and Lease heartbeats,
the pod informer (only this node's pods, field selector ``spec.nodeName``) and the mirror
pods.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from tinykube import aio
from tinykube.api import meta
from tinykube.api import pods as podutil
from tinykube.api.errors import ApiError
from tinykube.api.quantity import cpu_millis, value_int
from tinykube.kubelet import nodestatus, static
from tinykube.kubelet.backoff import Backoff
from tinykube.kubelet.config import KubeletConfig, validate
from tinykube.kubelet.env import EnvSources, referenced_names
from tinykube.kubelet.inotify import DIR_CHANGES, Inotify
from tinykube.kubelet.metrics import KubeletMetrics
from tinykube.kubelet.podworker import PodWorkers, container_resources
from tinykube.kubelet.probes import TITLE, Result
from tinykube.kubelet.runtime.fake import FakeRuntime
from tinykube.kubelet.runtime.interface import ContainerState, LinuxResources, PodSandboxConfig
from tinykube.kubelet.runtime.cgroups import milli_cpu_to_shares
from tinykube.kubelet.runtime.network import remove_bridge
from tinykube.kubelet.runtime.process import ProcessRuntime
from tinykube.kubelet.stats import SummaryProvider

if TYPE_CHECKING:
    from tinykube.client.events import EventRecorder
    from tinykube.client.informer import Informer
    from tinykube.client.rest import Client

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LEASE_NAMESPACE = "kube-node-lease"
# the resources kubelet admission checks, each in the unit upstream compares it in
# (MilliValue() for cpu, Value() for the others: rounded up)
ADMITTED = {"cpu": cpu_millis, "memory": value_int, "pods": value_int}
RETRY_INITIAL = 0.2
RETRY_MAX = 1.0  # the API server of a fresh `tinykube up` comes up within seconds
RETRY_REFUSED = 0.1  # while the API server's port is closed
NO_ROOT_WARNING = ("the process runtime runs without root: pods share the host's network namespace, hostname and "
                   "filesystem (no pod IPs, volumes are not mounted)")


def _micro_now() -> str:
    return meta.now_micro()


def _import_client() -> None:
    import tinykube.client.events  # noqa: F401
    import tinykube.client.informer  # noqa: F401
    import tinykube.kubelet.server  # noqa: F401


def connection_refused(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a refused TCP connect: nothing listens yet."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 8:
        if isinstance(cur, ConnectionRefusedError):
            return True
        os_error = getattr(cur, "os_error", None)  # aiohttp's ClientConnectorError
        if isinstance(os_error, ConnectionRefusedError):
            return True
        if isinstance(os_error, OSError) and os_error.errno == errno.ECONNREFUSED:
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


class Kubelet:
    def __init__(self, config: KubeletConfig) -> None:
        validate(config)
        self.config = config
        self.node_name = config.node_name
        self.host_ip = config.node_ip
        self.root_dir = os.path.abspath(config.root_dir)
        self.backoff = Backoff(config.crashloop_base_backoff, config.crashloop_max_backoff)
        self.pod_cidr = config.pod_cidr or "10.244.0.0/24"
        self.runtime = self._make_runtime()
        self.images = self.runtime  # both runtimes serve CRI's ImageService too
        self.runtime_prefix = self.runtime.name
        self.workers = PodWorkers(self)
        self.stats = SummaryProvider(self)
        self.static_pods: dict[str, Obj] = {}
        self.mirror_uids: dict[str, str] = {}  # static uid -> mirror pod uid
        self.node: Obj | None = None
        self.registered = asyncio.Event()
        self.client: Client | None = config.client
        self._own_client = config.client is None
        self.recorder: EventRecorder | None = None
        self.pod_informer: Informer | None = None
        self.service_informer: Informer | None = None
        self._tasks: list[asyncio.Task] = []
        self._last_status: dict[str, Obj] = {}
        self._requests: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {}  # uid -> (requests, units)
        self._mirror_wake = asyncio.Event()
        self.capacity, self.allocatable = {}, {}
        self.metrics = KubeletMetrics(self.node_name, self._running_pods, self._container_states)
        self.server = None
        self._server_ready: asyncio.Future[None] | None = None
        self.started_at = time.time()

    def _make_runtime(self) -> ProcessRuntime | FakeRuntime:
        rdir = os.path.join(self.root_dir, "runtime-root")
        if self.config.runtime == "fake":
            return FakeRuntime(rdir, pod_cidr=self.pod_cidr, exit_codes=self.config.fake_exit_codes)
        return ProcessRuntime(rdir, pod_cidr=self.pod_cidr, bridge=self.config.bridge,
                              cgroup_parent=f"{self.config.cgroup_parent}/{self.node_name}",
                              isolate=self.config.isolate, service_cidr=self.config.service_cidr)

    @property
    def runtime_version(self) -> str:
        return f"{self.runtime.name}://{self.runtime.version}"

    def can_isolate(self) -> bool:
        return isinstance(self.runtime, ProcessRuntime) and self.runtime.isolate

    def shared_network(self) -> str:
        """Why this node's pods share the host's network ("" when each gets its own)."""
        return self.runtime.no_network if isinstance(self.runtime, ProcessRuntime) else ""

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        for sub in ("pods", "logs/pods", "runtime-root"):
            os.makedirs(os.path.join(self.root_dir, sub), exist_ok=True)
        if isinstance(self.runtime, ProcessRuntime):
            await self.runtime.recover()
            await self.runtime.warm_up()
        self.capacity, self.allocatable = nodestatus.machine_capacity(self.root_dir, self.config.max_pods,
                                                                      self.config.capacity)
        if isinstance(self.runtime, ProcessRuntime):
            self.runtime.set_node_cpu(cpu_millis(self.allocatable.get("cpu", "0")))
        if self.config.pod_manifest_path:
            # the watch exists before the first load, so a manifest written in between is
            # not missed; the static pods (`tinykube up`'s control plane) start before the
            # API client is loaded and the server's certificate is made
            directory = self.config.pod_manifest_path
            os.makedirs(directory, exist_ok=True)
            watch = Inotify(directory, DIR_CHANGES)
            self._load_static_pods()
            self._spawn(self._watch_manifests(watch), "static-pods")
        # the HTTP client's and server's modules load on a thread (0.3-0.5 s of CPU): the
        # static pods' workers, waiting on their shims, go on meanwhile
        await asyncio.to_thread(_import_client)
        if self.client is not None or self.config.kubeconfig:
            from tinykube.client.events import EventRecorder
            from tinykube.client.rest import Client

            if self.client is None:
                self.client = Client.from_kubeconfig(self.config.kubeconfig, user_agent=f"kubelet/{self.node_name}")
            self.recorder = EventRecorder(self.client, "kubelet", host=self.node_name,
                                          qps=self.config.event_record_qps, burst=self.config.event_burst)
        if self.client is not None:
            # registration needs the server's port (the Node's daemonEndpoints): it waits
            # for it, while the node is found and the API server is waited for already
            self._server_ready = asyncio.get_running_loop().create_future()
            self._spawn(self._run_with_api(), "api")
        await self._start_server()

    async def _start_server(self) -> None:
        from tinykube.kubelet.server import KubeletServer

        self.server = KubeletServer(self)
        try:
            await self.server.start()
        except BaseException as exc:
            if self._server_ready is not None and not self._server_ready.done():
                self._server_ready.set_exception(exc)
                self._server_ready.exception()  # retrieved: only start()'s caller reports it
            raise
        self.config.port = self.server.port
        self.config.healthz_port = self.server.healthz_port
        if self._server_ready is not None and not self._server_ready.done():
            self._server_ready.set_result(None)

    def _spawn(self, coro, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"kubelet-{self.node_name}-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
        for inf in (self.pod_informer, self.service_informer):
            if inf is not None:
                await inf.stop()
        await self.workers.stop_all()
        await self.runtime.close()
        if self.config.remove_bridge_on_stop and self.can_isolate() and not self.shared_network():
            await remove_bridge(self.config.bridge)
        if self.server is not None:
            await self.server.stop()
        if self.recorder is not None:
            await self.recorder.close()
        if self._own_client and self.client is not None:
            await self.client.close()

    # -- API-dependent loops -----------------------------------------------------------
    async def _run_with_api(self) -> None:
        await self._retry(self._register, "registering node")
        why = self.shared_network()
        if why and self.recorder is not None and self.node is not None:
            message = NO_ROOT_WARNING if not self.can_isolate() else f"{why}: pods share the host's network namespace"
            self.recorder.event(self.node, "Warning", "HostNetwork", message)
        assert self.client is not None
        from tinykube.client.informer import Informer

        self.service_informer = Informer(self.client.resource("services"))
        self.pod_informer = Informer(self.client.resource("pods"), field_selector=f"spec.nodeName={self.node_name}")
        self.pod_informer.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n),
                                       on_delete=self._on_pod_deleted)
        self._spawn(self._status_loop(), "node-status")
        self._spawn(self._lease_loop(), "lease")
        self._spawn(self._mirror_loop(), "mirror-pods")
        await self.service_informer.start()
        await self.pod_informer.start()

    async def _retry(self, fn, what: str) -> None:
        """Call ``fn`` until it succeeds: every RETRY_REFUSED while the API server refuses
        connections (a refused connect costs next to nothing, and `tinykube up` waits for
        the node), with back-off up to RETRY_MAX on any other error."""
        delay = RETRY_INITIAL
        while True:
            try:
                await fn()
                return
            except (ApiError, ConnectionError, asyncio.TimeoutError, OSError) as exc:
                if connection_refused(exc):
                    log.debug("%s: %s; retrying in %.1fs", what, exc, RETRY_REFUSED)
                    await asyncio.sleep(RETRY_REFUSED)
                    continue
                log.info("%s: %s; retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _register(self) -> None:
        assert self.client is not None
        nodes = self.client.resource("nodes")
        labels = nodestatus.node_labels(self.node_name, self.config.node_labels)
        body = nodestatus.initial_node(self.node_name, labels, self.config.register_with_taints,
                                       self.config.pod_cidr)
        try:
            node = await nodes.create(body)
        except ApiError as exc:
            if exc.code != 409:
                raise
            node = await nodes.get(self.node_name)
            missing = {k: v for k, v in labels.items() if meta.labels(node).get(k) != v}
            if missing:
                node = await nodes.patch(self.node_name, {"metadata": {"labels": missing}}, patch_type="merge")
        self.node = node
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr:
            self.pod_cidr = cidr
            self.runtime.set_pod_cidr(cidr)
        if self._server_ready is not None:
            await asyncio.shield(self._server_ready)  # the status carries the server's port
        await self._post_node_status()
        self.registered.set()

    async def _post_node_status(self) -> None:
        assert self.client is not None
        images = [{"names": img.repo_tags + [img.id], "sizeBytes": img.size} for img in await self.runtime.list_images()]
        status = nodestatus.node_status(
            old=self.node or {}, capacity=self.capacity, allocatable=self.allocatable, node_ip=self.host_ip,
            hostname=self.node_name, port=self.config.port, runtime_version=self.runtime_version,
            root_dir=self.root_dir, images=images)
        self.node = await self.client.resource("nodes").patch(self.node_name, {"status": status},
                                                              patch_type="merge", subresource="status")

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.node_status_update_frequency)
            try:
                await self._post_node_status()
            except ApiError as exc:
                if exc.code == 404:
                    await self._retry(self._register, "re-registering node")
                else:
                    log.warning("updating node status: %s", exc)
            except (ConnectionError, asyncio.TimeoutError) as exc:
                log.warning("updating node status: %s", exc)

    def lease_body(self, existing: Obj | None) -> Obj:
        now = _micro_now()
        lease = existing or {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                             "metadata": {"name": self.node_name, "namespace": LEASE_NAMESPACE}}
        if self.node is not None and meta.uid(self.node):
            lease["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                     "uid": meta.uid(self.node)}]
        spec = lease.setdefault("spec", {})
        spec.update(holderIdentity=self.node_name, leaseDurationSeconds=self.config.lease_duration_seconds,
                    renewTime=now)
        return lease

    async def renew_lease(self) -> None:
        assert self.client is not None
        leases = self.client.resource("leases", "coordination.k8s.io")
        try:
            lease = await leases.get(self.node_name, namespace=LEASE_NAMESPACE)
        except ApiError as exc:
            if exc.code != 404:
                raise
            try:
                await leases.create(self.lease_body(None), namespace=LEASE_NAMESPACE)
                return
            except ApiError as create_exc:
                if create_exc.code != 409:  # created meanwhile (another renewal): update it
                    raise
            lease = await leases.get(self.node_name, namespace=LEASE_NAMESPACE)
        await leases.update(self.lease_body(lease))

    async def _lease_loop(self) -> None:
        interval = self.config.lease_duration_seconds / 4
        while True:
            try:
                await self.renew_lease()
            except (ApiError, ConnectionError, asyncio.TimeoutError) as exc:
                log.warning("renewing lease: %s", exc)
            await asyncio.sleep(interval)

    # -- pod sources -------------------------------------------------------------------
    def _on_pod(self, pod: Obj) -> None:
        if static.is_mirror_pod(pod):
            self._mirror_wake.set()
            return
        self.workers.update(pod)

    def _on_pod_deleted(self, pod: Obj) -> None:
        if static.is_mirror_pod(pod):
            self._mirror_wake.set()
            return
        self.workers.remove(pod)

    def _load_static_pods(self) -> None:
        pods, errors = static.load_manifests(self.config.pod_manifest_path or "", self.node_name)
        for err in errors:
            log.warning("%s", err)
        for uid, pod in self.static_pods.items():
            if uid not in pods:
                self.workers.remove(pod)
        for uid, pod in pods.items():
            if uid not in self.static_pods:
                self.workers.update(pod, source="file")
        self.static_pods = pods
        self._mirror_wake.set()

    async def _watch_manifests(self, watch: Inotify) -> None:
        try:
            while True:
                await watch.wait()
                await asyncio.sleep(0.05)  # let an editor finish writing the file
                self._load_static_pods()
        finally:
            watch.close()

    async def _mirror_loop(self) -> None:
        """Keep one mirror pod per static pod in the API, retrying until it is accepted."""
        delay = RETRY_INITIAL
        while True:
            self._mirror_wake.clear()
            try:
                await self.sync_mirror_pods()
                delay = RETRY_INITIAL
                try:
                    await aio.wait_for(self._mirror_wake.wait(), 30)
                except asyncio.TimeoutError:
                    pass
            except (ApiError, ConnectionError, asyncio.TimeoutError) as exc:
                log.info("mirror pods: %s; retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def sync_mirror_pods(self) -> None:
        assert self.client is not None
        pods = self.client.resource("pods")
        for uid, pod in list(self.static_pods.items()):
            ns, name = meta.namespace(pod), meta.name(pod)
            try:
                existing: Obj | None = await pods.get(name, namespace=ns)
            except ApiError as exc:
                if exc.code != 404:
                    raise
                existing = None
            want_hash = meta.annotations(pod)[static.HASH_ANNOTATION]
            if existing is not None and (meta.is_deleting(existing) or
                                         meta.annotations(existing).get(static.MIRROR_ANNOTATION) != want_hash):
                await pods.delete(name, namespace=ns, grace_period_seconds=0,
                                  preconditions={"uid": meta.uid(existing)})
                existing = None
            if existing is None:
                existing = await pods.create(static.mirror_pod(pod, self.node), namespace=ns)
                self._last_status.pop(uid, None)
            if self.mirror_uids.get(uid) != meta.uid(existing):
                self.mirror_uids[uid] = meta.uid(existing)
                self._last_status.pop(uid, None)
                worker = self.workers.workers.get(uid)
                if worker is not None:
                    worker.wake.set()
        for uid in [u for u in self.mirror_uids if u not in self.static_pods]:
            del self.mirror_uids[uid]
        await self._delete_orphan_mirrors()

    async def _delete_orphan_mirrors(self) -> None:
        """Mirror pods on this node whose static pod is gone (its manifest was removed)."""
        if self.pod_informer is None or not self.pod_informer.has_synced:
            return
        assert self.client is not None
        hashes = {meta.annotations(p)[static.HASH_ANNOTATION] for p in self.static_pods.values()}
        for pod in self.pod_informer.cache.list():
            mirror_hash = meta.annotations(pod).get(static.MIRROR_ANNOTATION)
            if mirror_hash is not None and mirror_hash not in hashes:
                try:
                    await self.client.resource("pods").delete(meta.name(pod), namespace=meta.namespace(pod),
                                                              grace_period_seconds=0,
                                                              preconditions={"uid": meta.uid(pod)})
                except ApiError as exc:
                    if exc.code not in (404, 409):
                        raise

    # -- services for pod workers (WorkerHost) -----------------------------------------
    def record_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        if self.recorder is None:
            log.info("event %s %s %s: %s", meta.key(obj), type_, reason, message)
            return
        target = obj
        if meta.annotations(obj).get(static.SOURCE_ANNOTATION) == "file":
            mirror_uid = self.mirror_uids.get(meta.uid(obj))
            if mirror_uid is None:
                return  # no mirror pod yet to attach the event to
            target = {**obj, "metadata": {**obj["metadata"], "uid": mirror_uid}}
        self.recorder.event({"apiVersion": "v1", "kind": "Pod", **target}, type_, reason, message)

    async def fetch(self, resource: str, namespace: str, name: str) -> Obj | None:
        if self.client is None:
            return None
        try:
            return await self.client.resource(resource).get(name, namespace=namespace)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def request_token(self, namespace: str, sa: str, audience: str | None, seconds: int) -> str:
        if self.client is None:
            raise ConnectionError("no API server to request a service account token from")
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else [], "expirationSeconds": seconds}}
        result = await self.client.resource("serviceaccounts").create_subresource(sa, "token", body,
                                                                                   namespace=namespace)
        return (result.get("status") or {}).get("token", "")

    async def env_sources(self, pod: Obj) -> EnvSources:
        ns = meta.namespace(pod)
        cm_names, secret_names = referenced_names(pod)
        configmaps = {n: await self.fetch("configmaps", ns, n) for n in cm_names if n}
        secrets = {n: await self.fetch("secrets", ns, n) for n in secret_names if n}
        services: list[Obj] = []
        master: list[Obj] = []
        if self.service_informer is not None and self.service_informer.has_synced:
            for svc in self.service_informer.cache.list():
                if meta.namespace(svc) == ns:
                    services.append(svc)
                if meta.namespace(svc) == "default" and meta.name(svc) == "kubernetes":
                    master.append(svc)
        if ns == "default":
            master = []
        return EnvSources(configmap=configmaps.get, secret=secrets.get, services=services,
                          master_services=master, node_allocatable=self.allocatable)

    def sandbox_config(self, pod: Obj) -> PodSandboxConfig:
        spec = podutil.spec(pod)
        servers, searches, options = self.dns_config(pod)
        # upstream's ResourceConfigForPod: the pod's CPU weight is its effective CPU request
        # (MilliCPUToShares; a BestEffort pod, with none, gets the minimum 2)
        res = LinuxResources(pids_limit=max(0, self.config.pod_pids_limit),
                             cpu_shares=milli_cpu_to_shares(cpu_millis(self._pod_requests(pod)[0].get("cpu", 0))))
        limits = [container_resources(c).memory_limit_in_bytes for c in podutil.containers(pod)]
        if limits and all(limits):
            res.memory_limit_in_bytes = sum(limits)
        aliases = [(a.get("ip", ""), list(a.get("hostnames") or [])) for a in spec.get("hostAliases") or []]
        ns, name = meta.namespace(pod), meta.name(pod)
        return PodSandboxConfig(
            name=name, namespace=ns, uid=meta.uid(pod), hostname=(spec.get("hostname") or name)[:63],
            log_directory=os.path.join(self.root_dir, "logs", "pods", f"{ns}_{name}_{meta.uid(pod)}"),
            dns_servers=servers, dns_searches=searches, dns_options=options,
            host_network=bool(spec.get("hostNetwork")), host_pid=bool(spec.get("hostPID")),
            host_ipc=bool(spec.get("hostIPC")), labels=dict(meta.labels(pod)),
            annotations=dict(meta.annotations(pod)), resources=res, host_aliases=aliases,
            subdomain=spec.get("subdomain", ""), cluster_domain=self.config.cluster_domain)

    def dns_config(self, pod: Obj) -> tuple[list[str], list[str], list[str]]:
        """Nameservers, searches and options per dnsPolicy (``pkg/kubelet/network/dns``)."""
        spec = podutil.spec(pod)
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        host_net = bool(spec.get("hostNetwork"))
        domain = self.config.cluster_domain
        servers: list[str] = []
        searches: list[str] = []
        options: list[str] = []
        cluster_first = policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_net)
        if cluster_first and self.config.cluster_dns:
            ns = meta.namespace(pod)
            servers = list(self.config.cluster_dns)
            searches = [f"{ns}.svc.{domain}", f"svc.{domain}", domain]
            options = ["ndots:5"]
        elif policy != "None":
            servers, searches, options = host_resolv_conf()
        extra = spec.get("dnsConfig") or {}
        servers += [s for s in extra.get("nameservers") or [] if s not in servers]
        searches += [s for s in extra.get("searches") or [] if s not in searches]
        for opt in extra.get("options") or []:
            text = opt.get("name", "") + (f":{opt['value']}" if opt.get("value") else "")
            options = [o for o in options if o.split(":")[0] != opt.get("name")] + [text]
        return servers, searches, options

    async def push_status(self, pod: Obj, status: Obj) -> None:
        """PATCH pods/status, only when it changed; static pods report on their mirror pod."""
        uid = meta.uid(pod)
        if self.client is None:
            return
        is_static = meta.annotations(pod).get(static.SOURCE_ANNOTATION) == "file"
        if is_static and uid not in self.mirror_uids:
            return
        comparable = {k: v for k, v in status.items() if k != "conditions"}
        comparable["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                    for c in status.get("conditions", [])]
        if self._last_status.get(uid) == comparable:
            return
        body: Obj = {"status": {**{k: None for k in ("reason", "message", "podIP", "podIPs",
                                                    "initContainerStatuses")}, **status}}
        if not is_static:
            body["metadata"] = {"uid": uid}
        try:
            await self.client.resource("pods").patch(meta.name(pod), body, namespace=meta.namespace(pod),
                                                     patch_type="merge", subresource="status")
        except ApiError as exc:
            if exc.code in (404, 409):
                log.info("status of pod %s not written: %s", meta.key(pod), exc)
                return
            raise
        self._last_status[uid] = comparable

    async def confirm_deletion(self, pod: Obj) -> None:
        if self.client is None or meta.annotations(pod).get(static.SOURCE_ANNOTATION) == "file":
            return
        try:
            await self.client.resource("pods").delete(meta.name(pod), namespace=meta.namespace(pod),
                                                      grace_period_seconds=0,
                                                      preconditions={"uid": meta.uid(pod)})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise
        self._last_status.pop(meta.uid(pod), None)

    def admit(self, pod: Obj) -> tuple[str, str] | None:
        """Reject a pod that does not fit the node's allocatable (upstream's predicate admit),
        in the units upstream compares: milli-CPU, bytes, pods."""
        uid = meta.uid(pod)
        used = [0] * len(ADMITTED)
        for other_uid, w in self.workers.workers.items():
            if other_uid != uid and w.admitted and w.rejection is None and not podutil.is_terminal(w.pod):
                for i, value in enumerate(self._pod_requests(w.pod)[1]):
                    used[i] += value
        want = self._pod_requests(pod)[1]
        cap = _admission_units({r: self.allocatable.get(r, "0") for r in ADMITTED})
        for resource, wanted, have, capacity in zip(ADMITTED, want, used, cap):
            if wanted and wanted + have > capacity:
                message = (f"Node didn't have enough resource: {resource}, requested: {wanted}, "
                           f"used: {have}, capacity: {capacity}")
                reason = f"OutOf{resource}"
                self.record_event(pod, "Warning", reason, message)
                return reason, f"Pod was rejected: {message}"
        return None

    def _pod_requests(self, pod: Obj) -> tuple[dict[str, Any], tuple[int, ...]]:
        """pod_requests(pod) and its admission units, remembered by UID: admitting a burst
        of pods would otherwise parse every other pod's requests again for each one. A
        pod's requests never change: the API server refuses updates to its resources,
        and a static pod whose manifest changes gets a new UID."""
        uid = meta.uid(pod)
        cached = self._requests.get(uid)
        if cached is None:
            if len(self._requests) > 2 * len(self.workers.workers) + 16:
                self._requests = {u: v for u, v in self._requests.items() if u in self.workers.workers}
            requests = podutil.pod_requests(pod)
            cached = self._requests[uid] = (requests, _admission_units(requests))
        return cached

    def observe_pod_started(self, pod: Obj, seconds: float) -> None:
        self.metrics.pod_start.observe(seconds)

    def observe_probe(self, pod: Obj, kind: str, container: str, result: Result) -> None:
        self.metrics.probe_total.labels(TITLE[kind], result.value, container, meta.name(pod),
                                        meta.namespace(pod), meta.uid(pod)).inc()

    def observe_sync(self, operation: str, seconds: float) -> None:
        self.metrics.pod_worker.labels(operation).observe(seconds)

    # -- state for the server and metrics ----------------------------------------------
    def _running_pods(self) -> int:
        return sum(1 for w in self.workers.workers.values() if w.sandbox_id)

    def _container_states(self) -> dict[str, int]:
        names = {ContainerState.CONTAINER_CREATED: "created", ContainerState.CONTAINER_RUNNING: "running",
                 ContainerState.CONTAINER_EXITED: "exited", ContainerState.CONTAINER_UNKNOWN: "unknown"}
        out = {v: 0 for v in names.values()}
        for w in self.workers.workers.values():
            for rec in w.records.values():
                if rec.current is not None:
                    out[names[rec.current.state]] += 1
        return out

    def pod_list(self) -> Obj:
        """The PodList the kubelet's /pods endpoint serves: the pods it runs, with their status."""
        items = []
        for w in self.workers.workers.values():
            pod = {"apiVersion": "v1", "kind": "Pod", **w.pod}
            pod["status"] = w.build_status() if w.rejection is None else podutil.status(w.pod)
            items.append(pod)
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}


def host_resolv_conf(path: str = "/etc/resolv.conf") -> tuple[list[str], list[str], list[str]]:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if not parts or parts[0].startswith(("#", ";")):
                    continue
                if parts[0] == "nameserver" and len(parts) > 1:
                    servers.append(parts[1])
                elif parts[0] in ("search", "domain"):
                    searches = parts[1:]
                elif parts[0] == "options":
                    options = parts[1:]
    except OSError:
        pass
    return servers, searches, options


def _admission_units(resources: dict[str, Any]) -> tuple[int, ...]:
    """The ``ADMITTED`` resources of a resource list as integers (milli-CPU, bytes, pods):
    summing a burst's requests stays integer arithmetic."""
    return tuple(unit(resources.get(name, 0)) for name, unit in ADMITTED.items())
