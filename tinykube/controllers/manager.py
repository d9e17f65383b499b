"""The controller manager: every enabled controller on one shared informer factory.

With leader election on (the default) the manager campaigns for the Lease
``kube-system/kube-controller-manager`` and starts its controllers only while holding it,
so of several managers exactly one acts; when leadership is lost the controllers stop,
the informers are dropped and the manager campaigns again. Health and workqueue metrics
are served on the secure port (10257) whether or not this instance leads.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from tinykube import aio
from tinykube.api.errors import ApiError
from tinykube.client.informer import InformerFactory
from tinykube.client.leaderelection import LeaderElector, default_identity
from tinykube.client.rest import Client
from tinykube.controllers.base import ControllerContext, WorkQueueMetrics
from tinykube.controllers.config import ControllerManagerConfig
from tinykube.controllers.registry import enabled_controllers
from tinykube.controllers.serving import HealthServer

log = logging.getLogger(__name__)


class ControllerManager:
    """Runs the enabled controllers (under leader election) and the health server.

    ``component`` names the process in metrics and certificates; the cloud controller
    manager is this class with its own registry and Lease.
    """

    component = "kube-controller-manager"

    def __init__(self, config: ControllerManagerConfig) -> None:
        self.config = config
        self.names = self.resolve_controllers(config.controllers)  # fail fast on a bad list
        self.identity = config.identity or default_identity()
        self.registry = CollectorRegistry()
        self.queue_metrics = WorkQueueMetrics(self.registry)
        self._leader_gauge = Gauge("leader_election_master_status",
                                   "Gauge of if the reporting system is master of the "
                                   "relevant lease, 0 indicates backup, 1 indicates master.",
                                   ["name"], registry=self.registry)
        self.client: Any = None
        self._own_client = False
        self.elector: LeaderElector | None = None
        self.server: HealthServer | None = None
        self.controllers: dict[str, Any] = {}
        self.context: ControllerContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = asyncio.Event()

    def resolve_controllers(self, spec: list[str]) -> dict[str, Any]:
        return enabled_controllers(spec)

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        if cfg.client is not None:
            self.client = cfg.client
        else:
            self.client = Client.from_kubeconfig(cfg.kubeconfig)
            self._own_client = True
        if cfg.root_ca_data is None:
            cfg.root_ca_data = self._find_root_ca()
        if cfg.secure_port is not None:
            self.server = HealthServer(cfg.bind_address, cfg.secure_port, self.registry,
                                       {"ping": lambda: None, "leaderElection": self._lease_ok},
                                       component=self.component)
            await self.server.start()
        if cfg.leader_elect:
            self.elector = LeaderElector(
                self.client, cfg.leader_elect_resource_namespace,
                cfg.leader_elect_resource_name, self.identity,
                lease_duration=cfg.leader_elect_lease_duration,
                renew_deadline=cfg.leader_elect_renew_deadline,
                retry_period=cfg.leader_elect_retry_period)
            self._task = asyncio.create_task(self._supervise(self._campaign),
                                             name="controller-manager")
        else:
            self._task = asyncio.create_task(self._supervise(self._run_controllers),
                                             name="controller-manager")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self._own_client and self.client is not None:
            await self.client.close()
            self.client = None

    async def wait_running(self, timeout: float | None = None) -> None:
        """Wait until this instance's controllers have synced their informers and run."""
        await aio.wait_for(self._running.wait(), timeout)

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader if self.elector is not None else self._running.is_set()

    @property
    def port(self) -> int | None:
        return self.server.port if self.server is not None else None

    def _find_root_ca(self) -> bytes | None:
        """The CA to publish: --root-ca-file, else the kubeconfig's cluster CA."""
        cfg = self.config
        if cfg.root_ca_file:
            with open(cfg.root_ca_file, "rb") as f:
                return f.read()
        if not cfg.kubeconfig:
            return None
        from tinykube.client.kubeconfig import load_kubeconfig

        creds = load_kubeconfig(cfg.kubeconfig)
        if creds.ca_data:
            return creds.ca_data
        if creds.ca_file:
            with open(creds.ca_file, "rb") as f:
                return f.read()
        return None

    def _lease_ok(self) -> str | None:
        if self._task is not None and self._task.done() and not self._task.cancelled():
            exc = self._task.exception()
            if exc is not None:
                return f"controllers stopped: {exc}"
        return None

    # running ----------------------------------------------------------------------------

    async def _start_informers(self, factory: InformerFactory) -> None:
        """Start every informer; wait for all to sync, but not forever for any one.

        A kind the API server fails to list must not keep every other controller from
        starting (upstream waits per controller, too); its informer keeps retrying and its
        cache fills once the server answers.
        """
        starts = {asyncio.create_task(i.start(), name=f"start-{i.name}"): i
                  for i in factory.informers}
        if not starts:
            return
        done, pending = await asyncio.wait(starts, timeout=self.config.informer_sync_timeout)
        for task in pending:
            task.cancel()
            log.warning("%s: informer %s has not synced after %.0fs; starting without it",
                        self.identity, starts[task].name, self.config.informer_sync_timeout)
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()

    async def _supervise(self, body: Any) -> None:
        """Run ``body`` again after the API server was unreachable (with back-off).

        Other failures are bugs: they end the task and fail /healthz.
        """
        delay = 0.5
        while True:
            try:
                await body()
                return
            except (ConnectionError, asyncio.TimeoutError, ApiError) as exc:
                log.warning("%s: %s; restarting the controllers in %.1fs", self.identity, exc,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _campaign(self) -> None:
        assert self.elector is not None
        while True:
            await self.elector.run(self._run_controllers)
            log.warning("%s: leader election lost; campaigning again", self.identity)

    async def _run_controllers(self) -> None:
        """Build every enabled controller, sync the informers, run until cancelled."""
        factory = InformerFactory(self.client)
        ctx = ControllerContext(self.client, factory, self.config,
                                queue_metrics=self.queue_metrics)
        self.context = ctx
        self.controllers = {name: factory_fn(ctx)
                            for name, factory_fn in self.names.items()}
        tasks: list[asyncio.Task[None]] = []
        self._leader_gauge.labels(self.component).set(1)
        try:
            await self._start_informers(factory)
            for name, ctrl in self.controllers.items():
                tasks.append(asyncio.create_task(ctrl.run(), name=f"controller-{name}"))
            self._running.set()
            log.info("%s: started controllers %s", self.identity, sorted(self.controllers))
            await asyncio.gather(*tasks)
        finally:
            self._running.clear()
            self._leader_gauge.labels(self.component).set(0)
            for ctrl in self.controllers.values():
                ctrl.shutdown()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await factory.stop_all()
            for recorder in ctx.recorders:
                await recorder.close()
            self.controllers = {}
