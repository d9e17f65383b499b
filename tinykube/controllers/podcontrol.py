"""Pod control: the one seam through which workload controllers create and delete pods.

Controllers never call the pods API directly, so unit tests swap in a recording fake
(``tinykube.controllers.testutil.FakePodControl``) and assert on what would be done.
Events are the upstream ones: SuccessfulCreate / FailedCreate / SuccessfulDelete /
FailedDelete.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from tinykube.api import meta
from tinykube.api.errors import ApiError

Obj = dict[str, Any]


def controller_ref(owner: Obj) -> Obj:
    """The ownerReference a controller puts on what it creates."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta.name(owner),
        "uid": meta.uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_from_template(template: Obj, owner: Obj, *, generate_name: str | None = None,
                      name: str | None = None) -> Obj:
    """A pod built from a pod template, owned by ``owner`` (upstream GetPodFromTemplate).

    Named ``<owner>-<random>`` through generateName unless ``name`` fixes it.
    """
    tmeta = template.get("metadata") or {}
    pod_meta: Obj = {"name": name} if name else {
        "generateName": generate_name if generate_name is not None else f"{meta.name(owner)}-"}
    pod_meta |= {
        "namespace": meta.namespace(owner),
        "labels": dict(tmeta.get("labels") or {}),
        "annotations": dict(tmeta.get("annotations") or {}),
        "ownerReferences": [controller_ref(owner)],
    }
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    if not pod_meta["annotations"]:
        del pod_meta["annotations"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


class PodControl(Protocol):
    async def create_pod(self, pod: Obj, owner: Obj) -> Obj: ...

    async def delete_pod(self, namespace: str, name: str, owner: Obj) -> None: ...

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj: ...


class RealPodControl:
    """Creates and deletes pods through the API and records the events upstream does."""

    def __init__(self, client: Any, recorder: Any) -> None:
        self._pods = client.resource("pods")
        self._recorder = recorder

    async def create_pod(self, pod: Obj, owner: Obj) -> Obj:
        try:
            created = await self._pods.create(pod, namespace=meta.namespace(owner))
        except ApiError as err:
            self._recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {err}")
            raise
        self._recorder.event(owner, "Normal", "SuccessfulCreate",
                             f"Created pod: {meta.name(created)}")
        return created

    async def delete_pod(self, namespace: str, name: str, owner: Obj) -> None:
        try:
            await self._pods.delete(name, namespace=namespace)
        except ApiError as err:
            if err.code == 404:
                return
            self._recorder.event(owner, "Warning", "FailedDelete",
                                 f"Error deleting: {err}")
            raise
        self._recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        return await self._pods.patch(name, patch, namespace=namespace, patch_type="merge")


async def slow_start_batch(count: int, initial_batch_size: int,
                           fn: Callable[[], Awaitable[Any]]) -> tuple[int, BaseException | None]:
    """Run ``fn`` ``count`` times in doubling batches; stop after the first failing batch.

    A quota or admission failure then costs one call instead of ``count`` (upstream
    slowStartBatch). Returns the number of successes and the first error.
    """
    remaining = count
    successes = 0
    batch = min(remaining, initial_batch_size)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(errors)
        if errors:
            for err in errors:
                if not isinstance(err, Exception):
                    raise err  # cancellation and the like are not pod failures
            return successes, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None
