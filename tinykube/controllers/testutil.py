"""Test doubles for controller unit tests (upstream's pkg/controller/testutil).

Unit tests seed informer caches with objects, swap in a recording pod control and a fake
client, and call ``sync(key)`` directly: no servers, no sleeps. The fake client keeps
objects in memory and enforces what controllers rely on (404, 409 on a stale
resourceVersion, generateName), so a controller bug shows up as a wrong action list.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tinykube import aio
from tinykube.api import kinds, meta
from tinykube.api.errors import ApiError
from tinykube.api.patch import merge_patch
from tinykube.client.informer import Cache

Obj = dict[str, Any]

# The tutorial's manifests in the source checkout, which the integration tests apply.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "controllers"


def load_example(name: str) -> Obj:
    """One manifest of ``examples/controllers`` (e.g. ``web-rs.yaml``), freshly parsed."""
    return yaml.safe_load((EXAMPLES / name).read_text())


class FakeInformer:
    """An informer whose cache tests fill; handlers fire only when asked to."""

    def __init__(self, resource: str) -> None:
        self.name = resource
        self.cache = Cache()
        self.handlers: list[tuple[Any, Any, Any]] = []
        self.has_synced = True

    def add_handlers(self, on_add=None, on_update=None, on_delete=None) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    def add_index(self, name: str, fn: Callable[[Obj], Iterable[str]]) -> None:
        self.cache.add_index(name, fn)

    def seed(self, *objs: Obj) -> None:
        """Put objects into the cache without telling handlers."""
        for obj in objs:
            self.cache.upsert(obj)

    def add(self, obj: Obj) -> None:
        self.cache.upsert(obj)
        for on_add, _, _ in self.handlers:
            if on_add:
                on_add(obj)

    def update(self, new: Obj) -> None:
        old = self.cache.upsert(new)
        for _, on_update, _ in self.handlers:
            if on_update:
                on_update(old or new, new)

    def delete(self, obj: Obj) -> None:
        self.cache.remove(meta.key(obj))
        for _, _, on_delete in self.handlers:
            if on_delete:
                on_delete(obj)


class FakeInformerFactory:
    def __init__(self) -> None:
        self.by_resource: dict[str, FakeInformer] = {}

    def informer(self, resource: str, group: str | None = None, **selectors: Any) -> FakeInformer:
        name = kinds.resolve(resource, group).resource
        if name not in self.by_resource:
            self.by_resource[name] = FakeInformer(name)
        return self.by_resource[name]

    def __getitem__(self, resource: str) -> FakeInformer:
        return self.informer(resource)

    def mirror(self, client: FakeClient, *resources: str) -> None:
        """Make the caches of ``resources`` exactly the fake client's objects (no handlers)."""
        for resource in resources:
            informer = self.informer(resource)
            for key in informer.cache.keys():
                informer.cache.remove(key)
            for obj in client.objects.get(informer.name, {}).values():
                informer.cache.upsert(copy.deepcopy(obj))

    async def start_all(self) -> None:
        return None

    async def stop_all(self) -> None:
        return None


@dataclass
class Action:
    verb: str
    resource: str
    namespace: str
    name: str
    body: Any = None
    subresource: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _random_suffix(n: int = 5) -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


class FakeResourceClient:
    """In-memory CRUD for one resource, recording every call into the shared action log."""

    def __init__(self, owner: FakeClient, resource: str, info: Any) -> None:
        self._owner = owner
        self.resource = resource
        self.info = info

    @property
    def _objects(self) -> dict[str, Obj]:
        return self._owner.objects.setdefault(self.resource, {})

    def _key(self, namespace: str | None, name: str) -> str:
        return meta.make_key(namespace if self.info.namespaced else None, name)

    def _record(self, verb: str, namespace: str | None, name: str, body: Any = None,
                subresource: str | None = None, **options: Any) -> None:
        self._owner.actions.append(Action(verb, self.resource, namespace or "", name,
                                          copy.deepcopy(body), subresource, options))

    def _not_found(self, name: str) -> ApiError:
        return ApiError(404, "NotFound", f'{self.resource} "{name}" not found')

    async def get(self, name: str, *, namespace: str | None = None) -> Obj:
        self._record("get", namespace, name)
        obj = self._objects.get(self._key(namespace, name))
        if obj is None:
            raise self._not_found(name)
        return copy.deepcopy(obj)

    async def list(self, *, namespace: str | None = None, **_: Any) -> Obj:
        self._record("list", namespace, "")
        items = [copy.deepcopy(o) for o in self._objects.values()
                 if not namespace or meta.namespace(o) == namespace]
        return {"items": items, "metadata": {"resourceVersion": str(self._owner.revision)}}

    async def create(self, obj: Obj, *, namespace: str | None = None, **_: Any) -> Obj:
        self._owner.maybe_fail("create", self.resource)
        obj = copy.deepcopy(obj)
        md = meta.ensure_metadata(obj)
        if self.info.namespaced:
            md["namespace"] = namespace or md.get("namespace") or "default"
        if not md.get("name") and md.get("generateName"):
            md["name"] = md["generateName"] + _random_suffix()
        key = self._key(md.get("namespace"), md.get("name", ""))
        self._record("create", md.get("namespace"), md.get("name", ""), obj)
        if key in self._objects:
            raise ApiError(409, "AlreadyExists",
                           f'{self.resource} "{md.get("name")}" already exists')
        md.setdefault("uid", meta.new_uid())
        md.setdefault("creationTimestamp", meta.now())
        md.setdefault("generation", 1)
        md["resourceVersion"] = self._owner.bump()
        obj.setdefault("apiVersion", self.info.api_version)
        obj.setdefault("kind", self.info.kind)
        self._objects[key] = obj
        return copy.deepcopy(obj)

    async def update(self, obj: Obj, *, subresource: str | None = None) -> Obj:
        self._owner.maybe_fail("update", self.resource)
        key = self._key(meta.namespace(obj), meta.name(obj))
        self._record("update", meta.namespace(obj), meta.name(obj), obj, subresource)
        current = self._objects.get(key)
        if current is None:
            raise self._not_found(meta.name(obj))
        rv = meta.resource_version(obj)
        if rv and rv != meta.resource_version(current):
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {self.resource} '
                           f'"{meta.name(obj)}": the object has been modified; please apply '
                           f'your changes to the latest version and try again')
        new = copy.deepcopy(obj)
        if subresource == "status":
            new = {**copy.deepcopy(current), "status": copy.deepcopy(obj.get("status"))}
        elif subresource is None:
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
            if new.get("spec") != current.get("spec"):
                md = meta.ensure_metadata(new)
                md["generation"] = int(meta.metadata(current).get("generation") or 0) + 1
        meta.ensure_metadata(new)["resourceVersion"] = self._owner.bump()
        self._objects[key] = new
        return copy.deepcopy(new)

    async def patch(self, name: str, body: Any, *, namespace: str | None = None,
                    patch_type: str = "strategic", subresource: str | None = None,
                    **_: Any) -> Obj:
        self._owner.maybe_fail("patch", self.resource)
        self._record("patch", namespace, name, body, subresource, patch_type=patch_type)
        key = self._key(namespace, name)
        current = self._objects.get(key)
        if current is None:
            raise self._not_found(name)
        if patch_type == "json":
            raise ApiError(415, "UnsupportedMediaType", "json patch not supported by the fake")
        new = merge_patch(current, body)  # strategic patches too: the fake merges them
        meta.ensure_metadata(new)["resourceVersion"] = self._owner.bump()
        self._objects[key] = new
        return copy.deepcopy(new)

    async def delete(self, name: str, *, namespace: str | None = None, **options: Any) -> Obj:
        self._owner.maybe_fail("delete", self.resource)
        self._record("delete", namespace, name, None, None, **options)
        obj = self._objects.pop(self._key(namespace, name), None)
        if obj is None:
            raise self._not_found(name)
        return obj

    async def create_subresource(self, name: str, subresource: str, body: Obj, *,
                                 namespace: str | None = None) -> Obj:
        self._record("create", namespace, name, body, subresource)
        return body


class FakeClient:
    """A client whose resources live in memory; ``actions`` lists every call in order."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Obj]] = {}
        self.actions: list[Action] = []
        self.failures: dict[tuple[str, str], ApiError] = {}
        self._rev = itertools.count(1)
        self.revision = 0

    def bump(self) -> str:
        self.revision = next(self._rev)
        return str(self.revision)

    def maybe_fail(self, verb: str, resource: str) -> None:
        err = self.failures.get((verb, resource))
        if err is not None:
            raise err

    def resource(self, name: str, group: str | None = None) -> FakeResourceClient:
        info = kinds.resolve(name)
        return FakeResourceClient(self, info.resource, info)

    def writes(self, resource: str | None = None) -> list[Action]:
        """The mutating actions (not get/list), optionally of one resource."""
        return [a for a in self.actions if a.verb not in ("get", "list")
                and (resource is None or a.resource == resource)]

    def seed(self, resource: str, *objs: Obj) -> None:
        info = kinds.resolve(resource)
        for obj in objs:
            obj = copy.deepcopy(obj)
            md = meta.ensure_metadata(obj)
            md.setdefault("resourceVersion", self.bump())
            key = meta.make_key(md.get("namespace") if info.namespaced else None, md["name"])
            self.objects.setdefault(info.resource, {})[key] = obj


class FakeRecorder:
    """Collects events as ``(type, reason, message)`` tuples."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    async def close(self) -> None:
        return None


class FakePodControl:
    """Records pod creations/deletions instead of calling the API."""

    def __init__(self) -> None:
        self.created: list[Obj] = []
        self.deleted: list[str] = []
        self.patched: list[tuple[str, Obj]] = []
        self.create_error: ApiError | None = None
        self.create_limit: int | None = None

    async def create_pod(self, pod: Obj, owner: Obj) -> Obj:
        if self.create_error is not None and (
                self.create_limit is None or len(self.created) >= self.create_limit):
            raise self.create_error
        pod = copy.deepcopy(pod)
        md = pod["metadata"]
        md["name"] = md.get("name") or md.get("generateName", "") + _random_suffix()
        md["uid"] = meta.new_uid()
        self.created.append(pod)
        return pod

    async def delete_pod(self, namespace: str, name: str, owner: Obj) -> None:
        self.deleted.append(f"{namespace}/{name}")

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        self.patched.append((f"{namespace}/{name}", patch))
        return {"metadata": {"name": name, "namespace": namespace, **patch["metadata"]}}


def make_context(config: Any | None = None):
    """A ControllerContext over fakes: (ctx, client, informers, recorder)."""
    from tinykube.controllers.base import ControllerContext
    from tinykube.controllers.config import ControllerManagerConfig

    client = FakeClient()
    informers = FakeInformerFactory()
    recorder = FakeRecorder()
    ctx = ControllerContext(client, informers, config or ControllerManagerConfig(),
                            recorder_factory=lambda _name: recorder)
    return ctx, client, informers, recorder


# --- object builders ----------------------------------------------------------------------

def new_replicaset(name: str, replicas: int = 3, *, namespace: str = "default",
                   labels: dict[str, str] | None = None, generation: int = 1,
                   min_ready_seconds: int = 0) -> Obj:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace, "uid": meta.new_uid(),
                     "generation": generation, "resourceVersion": "1",
                     "creationTimestamp": meta.now()},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready_seconds,
                 "selector": {"matchLabels": dict(labels)},
                 "template": {"metadata": {"labels": dict(labels)},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {},
    }


def new_pod(name: str, *, namespace: str = "default", labels: dict[str, str] | None = None,
            owner: Obj | None = None, node: str | None = None, phase: str = "Pending",
            ready: bool = False, ready_at: str | None = None,
            created: str | None = None) -> Obj:
    pod: Obj = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": meta.new_uid(),
                     "labels": dict(labels or {}), "resourceVersion": "1",
                     "creationTimestamp": created or meta.now()},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": phase},
    }
    if owner is not None:
        pod["metadata"]["ownerReferences"] = [meta.owner_reference(owner)]
    if node:
        pod["spec"]["nodeName"] = node
    if ready:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True",
                                        "lastTransitionTime": ready_at or meta.now()}]
    return pod


def new_deployment(name: str, replicas: int = 3, *, namespace: str = "default",
                   image: str = "nginx:1.25", strategy: Obj | None = None,
                   generation: int = 1) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "uid": meta.new_uid(),
                     "generation": generation, "creationTimestamp": meta.now()},
        "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                 "strategy": strategy or {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": "25%",
                                                            "maxUnavailable": "25%"}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                 "template": {"metadata": {"labels": dict(labels)},
                              "spec": {"containers": [{"name": "web", "image": image}]}}},
        "status": {},
    }


def new_service(name: str, *, namespace: str = "default", selector: dict[str, str] | None = None,
                ports: list[Obj] | None = None, cluster_ip: str = "10.96.0.10") -> Obj:
    spec: Obj = {"clusterIP": cluster_ip,
                 "ports": ports if ports is not None else [
                     {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "uid": meta.new_uid(),
                         "resourceVersion": "1"},
            "spec": spec}


def with_ip(pod: Obj, ip: str) -> Obj:
    pod["status"]["podIP"] = ip
    pod["status"]["podIPs"] = [{"ip": ip}]
    return pod


# --- integration helpers (real API server) -------------------------------------------------

async def wait_for_list(rc: Any, predicate: Callable[[list[Obj]], bool], *,
                        namespace: str | None = None, label_selector: str | None = None,
                        timeout: float = 10.0) -> list[Obj]:
    """List, then watch, until ``predicate(items)`` holds; raise TimeoutError after ``timeout``.

    Each watch event updates the local copy of the collection, so the predicate is checked
    on every change instead of on a polling schedule.
    """
    async def run() -> list[Obj]:
        while True:
            listing = await rc.list(namespace=namespace, label_selector=label_selector)
            items = {meta.key(o): o for o in listing.get("items") or []}
            if predicate(list(items.values())):
                return list(items.values())
            rv = (listing.get("metadata") or {}).get("resourceVersion")
            try:
                async for event_type, obj in rc.watch(namespace=namespace,
                                                      label_selector=label_selector,
                                                      resource_version=rv,
                                                      timeout_seconds=int(timeout) + 5):
                    if event_type == "BOOKMARK":
                        continue
                    if event_type == "DELETED":
                        items.pop(meta.key(obj), None)
                    else:
                        items[meta.key(obj)] = obj
                    if predicate(list(items.values())):
                        return list(items.values())
            except ApiError as err:
                if err.code != 410:
                    raise

    return await aio.wait_for(run(), timeout)


async def wait_for_object(rc: Any, name: str, predicate: Callable[[Obj | None], bool], *,
                          namespace: str | None = None, timeout: float = 10.0) -> Obj | None:
    """Watch one object until ``predicate(obj)`` holds (``obj`` is None once it is gone)."""
    found: list[Obj | None] = [None]

    def check(items: list[Obj]) -> bool:
        match = next((o for o in items if meta.name(o) == name), None)
        found[0] = match
        return predicate(match)

    await wait_for_list(rc, check, namespace=namespace, timeout=timeout)
    return found[0]


class RunningControllers:
    """A controller manager started against an API server, for ``async with``."""

    def __init__(self, client: Any, controllers: list[str], **config: Any) -> None:
        from tinykube.controllers.config import ControllerManagerConfig

        self.client = client
        self.config = ControllerManagerConfig(client=client, controllers=controllers,
                                              leader_elect=config.pop("leader_elect", False),
                                              secure_port=config.pop("secure_port", None),
                                              **config)
        self.manager: Any = None

    async def __aenter__(self) -> Any:
        from tinykube.controllers.manager import ControllerManager

        self.manager = ControllerManager(self.config)
        await self.manager.start()
        if not self.config.leader_elect:
            await self.manager.wait_running(timeout=10)
        return self.manager

    async def __aexit__(self, *exc: object) -> None:
        await self.manager.stop()


def ready_status(pod: Obj, ip: str) -> Obj:
    """The status a kubelet reports for a running, ready pod."""
    now = meta.now()
    return {**(pod.get("status") or {}), "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": now,
            "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]}


async def mark_ready(client: Any, pod: Obj, ip: str) -> Obj | None:
    """Report a pod Running and Ready through pods/status, as its kubelet would."""
    pods = client.resource("pods")
    for _ in range(5):
        try:
            current = await pods.get(meta.name(pod), namespace=meta.namespace(pod))
        except ApiError as err:
            if err.code == 404:
                return None
            raise
        try:
            return await pods.update({**current, "status": ready_status(current, ip)},
                                     subresource="status")
        except ApiError as err:
            if err.code == 404:
                return None
            if err.code != 409:
                raise
    return None


class PodReadier:
    """Stands in for kubelets: every new pod in ``namespace`` is reported Ready at once.

    Runs one owned watch task between ``__aenter__`` and ``__aexit__``.
    """

    def __init__(self, client: Any, namespace: str = "default") -> None:
        self.client = client
        self.namespace = namespace
        self._task: Any = None
        self._next_ip = itertools.count(2)
        self.readied: set[str] = set()

    async def __aenter__(self) -> PodReadier:
        self._task = asyncio.create_task(self._run(), name="pod-readier")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def _ip(self) -> str:
        n = next(self._next_ip)
        return f"10.244.{n // 250}.{n % 250 + 1}"

    async def _run(self) -> None:
        pods = self.client.resource("pods")
        listing = await pods.list(namespace=self.namespace)
        for pod in listing.get("items") or []:
            await self._ready(pod)
        rv = (listing.get("metadata") or {}).get("resourceVersion")
        while True:
            async for event_type, pod in pods.watch(namespace=self.namespace,
                                                    resource_version=rv, timeout_seconds=300):
                rv = meta.resource_version(pod) or rv
                if event_type in ("ADDED", "MODIFIED"):
                    await self._ready(pod)

    async def _ready(self, pod: Obj) -> None:
        if meta.uid(pod) in self.readied or meta.deletion_timestamp(pod) is not None:
            return
        self.readied.add(meta.uid(pod))
        await mark_ready(self.client, pod, self._ip())
