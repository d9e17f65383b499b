"""The deployment controller: roll a Deployment's pods through ReplicaSets.

Each distinct pod template gets a ReplicaSet ``<deployment>-<pod-template-hash>``; the
controller scales the new one up and the old ones down within maxSurge/maxUnavailable
(RollingUpdate) or all old ones to zero first (Recreate), keeps ``revisionHistoryLimit``
old ReplicaSets for ``kubectl rollout undo``, and reports the Available and Progressing
conditions ``kubectl rollout status`` reads. ReplicaSets are written with their
resourceVersion, so a stale cache makes a write fail with 409 and the key is retried: no
expectations are needed (as upstream).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError, ignore_not_found
from tinykube.api.selectors import LabelSelector

from tinykube.controllers import deployment_util as du
from tinykube.controllers import util
from tinykube.controllers.base import BaseController, ControllerContext, owner_uid_index
from tinykube.controllers.podcontrol import controller_ref
from tinykube.controllers.refmanager import ControllerRefManager

Obj = dict[str, Any]
NAME = "deployment-controller"


def selector_of(d: Obj) -> LabelSelector:
    try:
        return LabelSelector.from_dict(util.spec(d).get("selector"))
    except ValueError:
        return LabelSelector.none()


class DeploymentController(BaseController):
    """Reconciles Deployments with their ReplicaSets."""

    def __init__(self, ctx: ControllerContext, workers: int = 5) -> None:
        super().__init__(ctx, NAME, workers)
        self.d_informer = ctx.informers.informer("deployments", "apps")
        self.rs_informer = ctx.informers.informer("replicasets", "apps")
        self.pod_informer = ctx.informers.informer("pods")
        owner_uid_index(self.pod_informer)
        self.deployments = ctx.client.resource("deployments", "apps")
        self.replicasets = ctx.client.resource("replicasets", "apps")
        self.recorder = ctx.recorder(NAME)
        self.d_informer.add_handlers(on_add=self._enqueue_obj,
                                     on_update=lambda old, new: self._enqueue_obj(new),
                                     on_delete=self._enqueue_obj)
        self.rs_informer.add_handlers(on_add=self._rs_changed,
                                      on_update=self._rs_updated,
                                      on_delete=self._rs_changed)
        self.pod_informer.add_handlers(on_delete=self._pod_deleted)

    # handlers ---------------------------------------------------------------------------

    def _enqueue_obj(self, d: Obj) -> None:
        self.enqueue(meta.key(d))

    def _owner_of(self, rs: Obj) -> Obj | None:
        return util.resolve_controller(self.d_informer.cache, rs, "Deployment")

    def _rs_changed(self, rs: Obj) -> None:
        d = self._owner_of(rs)
        if d is not None:
            self.enqueue(meta.key(d))
            return
        if meta.controller_of(rs) is None:
            for cand in self.d_informer.cache.list():
                if meta.namespace(cand) == meta.namespace(rs) and \
                        selector_of(cand).matches(meta.labels(rs)):
                    self.enqueue(meta.key(cand))

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(new):
            return
        old_d, new_d = self._owner_of(old), self._owner_of(new)
        if old_d is not None and (new_d is None or meta.uid(old_d) != meta.uid(new_d)):
            self.enqueue(meta.key(old_d))
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for old pods to be gone, so their deletion is news."""
        key = util.controller_key(pod, "ReplicaSet")
        if key is None:
            return
        rs = self.rs_informer.cache.get(key)
        d = self._owner_of(rs) if rs is not None else None
        if d is not None and du.strategy_type(d) == "Recreate":
            self.enqueue(meta.key(d))

    # sync -------------------------------------------------------------------------------

    async def sync(self, key: str) -> None:
        cached = self.d_informer.cache.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        if selector_of(d).empty:
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector "
                                "is required.")
            return
        rss = await self._claim_replicasets(d)
        if meta.deletion_timestamp(d) is not None:
            await self._sync_status_only(d, rss)
            return
        await self._check_paused_conditions(d)
        if util.spec(d).get("paused"):
            await self._sync_scale(d, rss)
            return
        new_rs, old_rss = self._split(d, rss)
        if self._is_scaling_event(d, new_rs, old_rss):
            await self._sync_scale(d, rss)
            return
        if du.strategy_type(d) == "Recreate":
            await self._rollout_recreate(d, rss)
        else:
            await self._rollout_rolling(d, rss)

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        ns = meta.namespace(d)
        candidates = [rs for rs in self.rs_informer.cache.list() if meta.namespace(rs) == ns]

        async def patch(namespace: str, name: str, body: Obj) -> Obj:
            return await self.replicasets.patch(name, body, namespace=namespace,
                                                patch_type="merge")

        async def fresh() -> Obj | None:
            try:
                return await self.deployments.get(meta.name(d), namespace=ns)
            except ApiError as err:
                if err.code == 404:
                    return None
                raise

        return await ControllerRefManager(d, selector_of(d), patch, fresh).claim(candidates)

    def _split(self, d: Obj, rss: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        new_rs = du.find_new_replicaset(d, rss)
        old = [rs for rs in rss if new_rs is None or meta.uid(rs) != meta.uid(new_rs)]
        return new_rs, old

    def _is_scaling_event(self, d: Obj, new_rs: Obj | None, old_rss: list[Obj]) -> bool:
        for rs in du.active_replicasets([new_rs, *old_rss]):
            desired = meta.annotations(rs).get(du.DESIRED_REPLICAS)
            if desired is not None and desired != str(du.replicas(d)):
                return True
        return False

    # new ReplicaSet -----------------------------------------------------------------------

    async def _new_replicaset(self, d: Obj, rss: list[Obj], create: bool
                              ) -> tuple[Obj | None, list[Obj]]:
        """The new ReplicaSet (synced to the latest revision, or created) and the old ones."""
        existing, old_rss = self._split(d, rss)
        new_revision = du.max_revision(old_rss) + 1
        if existing is not None:
            annotations, changed = du.new_rs_annotations(d, existing, new_revision, True)
            min_ready = util.spec(d).get("minReadySeconds", 0)
            if changed or util.spec(existing).get("minReadySeconds", 0) != min_ready:
                updated = copy.deepcopy(existing)
                updated["metadata"]["annotations"] = annotations
                updated["spec"]["minReadySeconds"] = min_ready
                existing = await self.replicasets.update(updated)
            await self._set_deployment_revision(d, meta.annotations(existing).get(du.REVISION))
            if du.has_progress_deadline(d) and \
                    du.get_condition(util.status(d), "Progressing") is None:
                status = copy.deepcopy(util.status(d))
                du.set_condition(status, du.new_condition(
                    "Progressing", "True", du.FOUND_NEW_RS,
                    f'Found new replica set "{meta.name(existing)}"'))
                await self._write_status(d, status)
            return existing, old_rss
        if not create:
            return None, old_rss
        created = await self._create_replicaset(d, old_rss, new_revision)
        return created, old_rss

    def _build_replicaset(self, d: Obj, old_rss: list[Obj], new_revision: int) -> Obj:
        collision = util.status(d).get("collisionCount")
        tmpl = copy.deepcopy(du.template(d))
        pod_hash = du.compute_hash(tmpl, collision)
        tmpl.setdefault("metadata", {}).setdefault("labels", {})[du.POD_TEMPLATE_HASH] = pod_hash
        selector = copy.deepcopy(util.spec(d).get("selector") or {})
        selector.setdefault("matchLabels", {})[du.POD_TEMPLATE_HASH] = pod_hash
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta.name(d)}-{pod_hash}", "namespace": meta.namespace(d),
                         "labels": dict(tmpl["metadata"]["labels"]),
                         "ownerReferences": [controller_ref(d)]},
            "spec": {"replicas": 0, "minReadySeconds": util.spec(d).get("minReadySeconds", 0),
                     "selector": selector, "template": tmpl},
        }
        rs["spec"]["replicas"] = du.new_rs_new_replicas(d, old_rss, rs)
        annotations, _ = du.new_rs_annotations(d, rs, new_revision, False)
        rs["metadata"]["annotations"] = annotations
        return rs

    async def _create_replicaset(self, d: Obj, old_rss: list[Obj], new_revision: int) -> Obj:
        rs = self._build_replicaset(d, old_rss, new_revision)
        try:
            created = await self.replicasets.create(rs, namespace=meta.namespace(d))
        except ApiError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                return await self._adopt_existing(d, rs)
            await self._record_create_failure(d, rs, err)
            raise
        count = du.replicas(created)
        if count > 0:
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {meta.name(created)} from 0 to {count}")
        await self._set_deployment_revision(d, str(new_revision))
        if du.has_progress_deadline(d):
            status = copy.deepcopy(util.status(d))
            du.set_condition(status, du.new_condition(
                "Progressing", "True", du.NEW_RS_CREATED,
                f'Created new replica set "{meta.name(created)}"'))
            await self._write_status(d, status)
        return created

    async def _adopt_existing(self, d: Obj, rs: Obj) -> Obj:
        """A ReplicaSet of that name exists: ours with our template, or a hash collision."""
        current = await self.replicasets.get(meta.name(rs), namespace=meta.namespace(rs))
        ref = meta.controller_of(current)
        if ref and ref.get("uid") == meta.uid(d) and \
                du.equal_ignore_hash(du.template(current), du.template(d)):
            return current
        status = copy.deepcopy(util.status(d))
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self._write_status(d, status)
        raise ApiError(409, "AlreadyExists",
                       f'replicasets.apps "{meta.name(rs)}" already exists: hash collision, '
                       f'collisionCount is now {status["collisionCount"]}')

    async def _record_create_failure(self, d: Obj, rs: Obj, err: ApiError) -> None:
        msg = f'Failed to create new replica set "{meta.name(rs)}": {err}'
        self.recorder.event(d, "Warning", "FailedCreate", msg)
        if du.has_progress_deadline(d):
            status = copy.deepcopy(util.status(d))
            du.set_condition(status, du.new_condition("Progressing", "False",
                                                      du.FAILED_RS_CREATE, msg))
            await self._write_status(d, status)

    async def _set_deployment_revision(self, d: Obj, rev: str | None) -> None:
        if not rev or meta.annotations(d).get(du.REVISION) == rev:
            return
        updated = await self.deployments.patch(
            meta.name(d), {"metadata": {"annotations": {du.REVISION: rev}}},
            namespace=meta.namespace(d), patch_type="merge")
        d["metadata"]["annotations"] = meta.annotations(updated)
        d["metadata"]["resourceVersion"] = meta.resource_version(updated)

    # scaling ----------------------------------------------------------------------------

    async def _scale(self, d: Obj, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        """Set a ReplicaSet's replicas and replica annotations; record ScalingReplicaSet."""
        desired, maximum = du.replicas(d), du.replicas(d) + du.max_surge(d)
        size_changed = du.replicas(rs) != new_scale
        if not size_changed and not du.replicas_annotations_need_update(rs, desired, maximum):
            return False, rs
        old_scale = du.replicas(rs)
        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = new_scale
        ann = updated["metadata"].setdefault("annotations", {})
        ann[du.DESIRED_REPLICAS], ann[du.MAX_REPLICAS] = str(desired), str(maximum)
        result = await self.replicasets.update(updated)
        if size_changed:
            op = "up" if new_scale > old_scale else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {op} replica set {meta.name(rs)} from {old_scale} "
                                f"to {new_scale}")
        return size_changed, result

    async def _sync_scale(self, d: Obj, rss: list[Obj]) -> None:
        """Scaling events and paused Deployments: resize without rolling (upstream sync)."""
        new_rs, old_rss = await self._new_replicaset(d, rss, create=False)
        await self._scale_proportionally(d, new_rs, old_rss)
        if util.spec(d).get("paused"):
            await self._cleanup(d, old_rss)
        all_rss = [rs for rs in [new_rs, *old_rss] if rs is not None]
        await self._sync_status(d, all_rss, new_rs)

    async def _scale_proportionally(self, d: Obj, new_rs: Obj | None,
                                    old_rss: list[Obj]) -> None:
        active = du.active_replicasets([new_rs, *old_rss])
        target = self._active_or_latest(new_rs, old_rss, active)
        if target is not None:
            if du.replicas(target) != du.replicas(d):
                await self._scale(d, target, du.replicas(d))
            return
        if du.is_saturated(d, new_rs):
            for rs in du.active_replicasets(old_rss):
                await self._scale(d, rs, 0)
            return
        if not du.is_rolling(d):
            return
        total = du.spec_replicas_sum(active)
        allowed = du.replicas(d) + du.max_surge(d) if du.replicas(d) > 0 else 0
        to_add = allowed - total
        if to_add == 0:
            return
        ordered = du.by_creation(active, newest_first=to_add > 0)
        ordered.sort(key=lambda r: du.replicas(r), reverse=True)
        added = 0
        sizes: dict[str, int] = {}
        for rs in ordered:
            share = int(du.replicas(rs) * to_add / total) if total else 0
            sizes[meta.uid(rs)] = du.replicas(rs) + share
            added += share
        leftover = to_add - added
        if ordered:
            first = meta.uid(ordered[0])
            sizes[first] = max(sizes[first] + leftover, 0)
        for rs in ordered:
            await self._scale(d, rs, max(sizes[meta.uid(rs)], 0))

    @staticmethod
    def _active_or_latest(new_rs: Obj | None, old_rss: list[Obj],
                          active: list[Obj]) -> Obj | None:
        if not active:
            if new_rs is not None:
                return new_rs
            return du.by_creation(old_rss, newest_first=True)[0] if old_rss else None
        return active[0] if len(active) == 1 else None

    # rolling update ---------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old_rss = await self._new_replicaset(d, rss, create=True)
        all_rss = [new_rs, *old_rss]
        if await self._reconcile_new(d, all_rss, new_rs):
            await self._sync_rollout_status(d, [rs for rs in all_rss if rs], new_rs)
            return
        if await self._reconcile_old(d, all_rss, du.active_replicasets(old_rss), new_rs):
            await self._sync_rollout_status(d, [rs for rs in all_rss if rs], new_rs)
            return
        status = du.calculate_status(all_rss, new_rs, d)
        if du.deployment_complete(d, status):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)

    async def _reconcile_new(self, d: Obj, all_rss: list[Obj], new_rs: Obj) -> bool:
        want = du.replicas(d)
        if du.replicas(new_rs) == want:
            return False
        if du.replicas(new_rs) > want:
            scaled, _ = await self._scale(d, new_rs, want)
            return scaled
        scaled, _ = await self._scale(d, new_rs, du.new_rs_new_replicas(d, all_rss, new_rs))
        return scaled

    async def _reconcile_old(self, d: Obj, all_rss: list[Obj], old_rss: list[Obj],
                             new_rs: Obj) -> bool:
        """Scale old ReplicaSets down without going below minAvailable (upstream rules)."""
        if du.spec_replicas_sum(old_rss) == 0:
            return False
        all_pods = du.spec_replicas_sum(all_rss)
        min_available = du.replicas(d) - du.max_unavailable(d)
        new_unavailable = du.replicas(new_rs) - int(
            util.status(new_rs).get("availableReplicas") or 0)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        old_rss, cleaned = await self._cleanup_unhealthy(d, old_rss, max_scaled_down)
        scaled = await self._scale_down_old(d, [new_rs, *old_rss], old_rss)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, d: Obj, old_rss: list[Obj], max_cleanup: int
                                 ) -> tuple[list[Obj], int]:
        """Old ReplicaSets' unavailable pods go first: they serve nobody."""
        total = 0
        out: list[Obj] = []
        for rs in du.by_creation(old_rss):
            available = int(util.status(rs).get("availableReplicas") or 0)
            if total >= max_cleanup or du.replicas(rs) == 0 or du.replicas(rs) == available:
                out.append(rs)
                continue
            count = min(max_cleanup - total, du.replicas(rs) - available)
            _, rs = await self._scale(d, rs, du.replicas(rs) - count)
            total += count
            out.append(rs)
        return out, total

    async def _scale_down_old(self, d: Obj, all_rss: list[Obj], old_rss: list[Obj]) -> int:
        min_available = du.replicas(d) - du.max_unavailable(d)
        available = du.status_sum(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        budget = available - min_available
        total = 0
        for rs in du.by_creation(old_rss):
            if total >= budget:
                break
            if du.replicas(rs) == 0:
                continue
            count = min(du.replicas(rs), budget - total)
            await self._scale(d, rs, du.replicas(rs) - count)
            total += count
        return total

    # recreate ---------------------------------------------------------------------------

    async def _rollout_recreate(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old_rss = await self._new_replicaset(d, rss, create=False)
        all_rss = [rs for rs in [new_rs, *old_rss] if rs is not None]
        scaled_down = False
        for rs in du.active_replicasets(old_rss):
            changed, _ = await self._scale(d, rs, 0)
            scaled_down = scaled_down or changed
        if scaled_down or self._old_pods_running(old_rss):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self._new_replicaset(d, rss, create=True)
            all_rss = [new_rs, *old_rss]
        await self._scale(d, new_rs, du.replicas(d))
        status = du.calculate_status(all_rss, new_rs, d)
        if du.deployment_complete(d, status):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)

    def _old_pods_running(self, old_rss: list[Obj]) -> bool:
        if du.status_sum(old_rss, "replicas") > 0:
            return True
        for rs in old_rss:
            for pod in self.pod_informer.cache.by_index("owner-uid", meta.uid(rs)):
                if util.pod_phase(pod) not in ("Succeeded", "Failed"):
                    return True
        return False

    # history ----------------------------------------------------------------------------

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> None:
        """Delete old ReplicaSets beyond revisionHistoryLimit, oldest revision first."""
        limit = du.revision_history_limit(d)
        if limit is None:
            return
        cleanable = [rs for rs in old_rss if meta.deletion_timestamp(rs) is None]
        diff = len(cleanable) - limit
        if diff <= 0:
            return
        cleanable.sort(key=lambda r: (du.revision(r), util.creation_time(r)))
        for rs in cleanable[:diff]:
            st = util.status(rs)
            if int(st.get("replicas") or 0) != 0 or du.replicas(rs) != 0 or \
                    meta.generation(rs) > int(st.get("observedGeneration") or 0):
                continue
            with ignore_not_found():
                await self.replicasets.delete(meta.name(rs), namespace=meta.namespace(rs))

    # status -----------------------------------------------------------------------------

    async def _check_paused_conditions(self, d: Obj) -> None:
        if not du.has_progress_deadline(d):
            return
        cond = du.get_condition(util.status(d), "Progressing")
        if cond is not None and cond.get("reason") == du.TIMED_OUT:
            return
        paused_cond = cond is not None and cond.get("reason") == du.PAUSED
        paused = bool(util.spec(d).get("paused"))
        if paused == paused_cond:
            return
        status = copy.deepcopy(util.status(d))
        if paused:
            new = du.new_condition("Progressing", "Unknown", du.PAUSED, "Deployment is paused")
        else:
            new = du.new_condition("Progressing", "Unknown", du.RESUMED,
                                   "Deployment is resumed")
        du.set_condition(status, new)
        await self._write_status(d, status)

    async def _sync_status_only(self, d: Obj, rss: list[Obj]) -> None:
        new_rs, old_rss = self._split(d, rss)
        await self._sync_status(d, rss, new_rs)

    async def _sync_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None) -> None:
        status = du.calculate_status(all_rss, new_rs, d)
        if not du.status_equal(status, util.status(d)):
            await self._write_status(d, status)

    async def _sync_rollout_status(self, d: Obj, all_rss: list[Obj], new_rs: Obj | None,
                                   now: dt.datetime | None = None) -> None:
        """Status plus the Progressing condition (upstream syncRolloutStatus)."""
        status = du.calculate_status(all_rss, new_rs, d)
        if not du.has_progress_deadline(d):
            du.remove_condition(status, "Progressing")
        current = du.get_condition(status, "Progressing")
        complete = (status["replicas"] == status["updatedReplicas"] and current is not None
                    and current.get("reason") == du.NEW_RS_AVAILABLE)
        if du.has_progress_deadline(d) and not complete:
            rs_name = meta.name(new_rs) if new_rs else ""
            if du.deployment_complete(d, status):
                msg = (f'ReplicaSet "{rs_name}" has successfully progressed.' if new_rs
                       else "Deployment has successfully progressed.")
                du.set_condition(status, du.new_condition("Progressing", "True",
                                                          du.NEW_RS_AVAILABLE, msg))
            elif du.deployment_progressing(d, status):
                msg = (f'ReplicaSet "{rs_name}" is progressing.' if new_rs
                       else "Deployment is progressing.")
                cond = du.new_condition("Progressing", "True", du.RS_UPDATED, msg)
                if current is not None and current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                du.remove_condition(status, "Progressing")
                du.set_condition(status, cond)
            elif du.deployment_timed_out(d, status, now):
                msg = (f'ReplicaSet "{rs_name}" has timed out progressing.' if new_rs
                       else "Deployment has timed out progressing.")
                du.set_condition(status, du.new_condition("Progressing", "False",
                                                          du.TIMED_OUT, msg))
                self.recorder.event(d, "Warning", du.TIMED_OUT,
                                    f"Deployment {meta.name(d)} has timed out progressing.")
        failure = self._replica_failure(all_rss)
        if failure is not None:
            du.set_condition(status, failure)
        else:
            du.remove_condition(status, "ReplicaFailure")
        if du.status_equal(status, util.status(d)):
            self._requeue_stuck(d, status, now)
            return
        await self._write_status(d, status)

    @staticmethod
    def _replica_failure(all_rss: list[Obj]) -> Obj | None:
        for rs in all_rss:
            cond = du.get_condition(util.status(rs), "ReplicaFailure")
            if cond is not None and cond.get("status") == "True":
                return du.new_condition("ReplicaFailure", "True", cond.get("reason", ""),
                                        cond.get("message", ""))
        return None

    def _requeue_stuck(self, d: Obj, status: Obj, now: dt.datetime | None) -> None:
        """Look again when the progress deadline would pass (upstream requeueStuckDeployment)."""
        cond = du.get_condition(status, "Progressing")
        if cond is None or not du.has_progress_deadline(d) or du.deployment_complete(d, status) \
                or cond.get("reason") == du.TIMED_OUT:
            return
        since = util.parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return
        after = (since + dt.timedelta(seconds=du.progress_deadline(d) or 0)
                 - (now or util.utcnow())).total_seconds()
        if after < 1:
            self.queue.add_rate_limited(meta.key(d))
        else:
            self.enqueue_after(meta.key(d), after + 1)

    async def _write_status(self, d: Obj, status: Obj) -> None:
        body = copy.deepcopy(d)
        body["status"] = status
        try:
            updated = await self.deployments.update(body, subresource="status")
        except ApiError as err:
            if err.code == 404:
                return
            raise
        d["status"] = util.status(updated)
        d["metadata"]["resourceVersion"] = meta.resource_version(updated)


def new_deployment_controller(ctx: ControllerContext) -> DeploymentController:
    return DeploymentController(ctx, workers=ctx.config.concurrent_deployment_syncs)
