"""`Proxy`: kube-proxy as a component. Informers on Services and EndpointSlices feed the
proxier's change tracker; a bounded-frequency runner syncs; health and metrics servers
report on the syncs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from tinykube import aio
from tinykube.proxy.bounded import BoundedFrequencyRunner
from tinykube.proxy.config import ConfigError, ProxyConfig, split_host_port
from tinykube.proxy.health import ProxierHealth, serve_healthz

# Start-up order (see `Proxy._start`): /healthz is served first, from this module's light
# imports (asyncio, orjson); aiohttp, the API client and the proxier of the configured mode
# are imported after it, in a thread, so the health server keeps answering meanwhile.
if TYPE_CHECKING:
    from tinykube.proxy.changes import ChangeTracker
    from tinykube.proxy.iptables.proxier import IptablesProxier
    from tinykube.proxy.iptables.rules import RuleConfig
    from tinykube.proxy.metrics import ProxyMetrics
    from tinykube.proxy.nftables.proxier import NftablesProxier
    from tinykube.proxy.nftables.rules import NftConfig
    from tinykube.proxy.userspace import UserspaceProxier

    AnyProxier = IptablesProxier | NftablesProxier | UserspaceProxier

log = logging.getLogger(__name__)

# Objects kube-proxy leaves alone, selected out as upstream does for both informers:
# services owned by another proxy, and headless services (which have nothing to program).
SERVICE_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
Object = dict[str, Any]


def _masquerade_settings(config: ProxyConfig) -> dict[str, Any]:
    """ProxyConfig's values of the settings both rule modes share (the names are the same)."""
    from tinykube.proxy.iptables.rules import MasqueradeConfig

    return {f.name: getattr(config, f.name) for f in dataclasses.fields(MasqueradeConfig)}


def rule_config(config: ProxyConfig) -> RuleConfig:
    from tinykube.proxy.iptables.rules import RuleConfig

    return RuleConfig(chain_prefix=config.chain_prefix, **_masquerade_settings(config))


def nft_config(config: ProxyConfig) -> NftConfig:
    from tinykube.proxy.nftables.rules import NftConfig

    return NftConfig(table=config.nftables_table, **_masquerade_settings(config))


def make_proxier(config: ProxyConfig, metrics: ProxyMetrics) -> AnyProxier:
    """The proxier of the configured mode; dry runs compute rules without applying them.
    Only that mode's modules are imported."""
    if config.mode == "nftables":
        from tinykube.proxy.nftables.proxier import Nft, NftablesProxier

        nft = None if config.dry_run else Nft(netns=config.iptables_netns)
        return NftablesProxier(nft_config(config), nft, metrics, clear_conntrack=config.clear_conntrack)
    if config.mode == "iptables":
        from tinykube.proxy.iptables.proxier import IptablesProxier
        from tinykube.proxy.iptables.runner import Iptables

        iptables = None if config.dry_run else Iptables(netns=config.iptables_netns)
        return IptablesProxier(rule_config(config), iptables, metrics, clear_conntrack=config.clear_conntrack)
    from tinykube.proxy.userspace import UserspaceProxier, default_addresses

    addresses = config.userspace_addresses or default_addresses(config.bind_address)
    return UserspaceProxier(addresses, config.udp_idle_timeout)


class Proxy:
    """kube-proxy for one node: `await start()`, `await stop()`."""

    def __init__(self, config: ProxyConfig) -> None:
        config.validate()
        self.config = config
        self.health = ProxierHealth(health_timeout=2 * config.sync_period)
        self._metrics: ProxyMetrics | None = None  # made on first use: see `_load`
        self._proxier: AnyProxier | None = None
        self.runner = BoundedFrequencyRunner(
            "sync-runner", self._sync, config.min_sync_period, config.sync_period)
        self.healthz_port = 0
        self.metrics_port = 0
        self.sync_count = 0
        self._syncing = False
        self._sync_done = asyncio.Condition()
        self._client: Any = None
        self._owns_client = False
        self._factory: Any = None
        self._runner_task: asyncio.Task[None] | None = None
        self._servers: list[Any] = []  # each with `await cleanup()`

    @property
    def metrics(self) -> ProxyMetrics:
        if self._metrics is None:
            from tinykube.proxy.metrics import ProxyMetrics

            self._metrics = ProxyMetrics()
        return self._metrics

    @property
    def proxier(self) -> AnyProxier:
        if self._proxier is None:
            self._proxier = make_proxier(self.config, self.metrics)
        return self._proxier

    @property
    def tracker(self) -> ChangeTracker:
        return self.proxier.tracker

    def _load(self) -> None:
        """Import what the proxy runs on (aiohttp, the client, the proxier) and make the
        metrics and the proxier: run in a thread while /healthz answers."""
        import tinykube.client.informer  # noqa: F401
        import tinykube.client.rest  # noqa: F401

        if self.config.metrics_bind_address:
            import aiohttp.web  # noqa: F401
        self.proxier  # noqa: B018

    # informer handlers: record the change, ask for a sync
    def _queue(self) -> None:
        self.health.queued()
        self.metrics.last_queued_timestamp.set(time.time())
        self.runner.run()

    def _on_service(self, svc: Object) -> None:
        self.tracker.service_updated(svc)
        self._queue()

    def _on_service_update(self, _old: Object, new: Object) -> None:
        self._on_service(new)

    def _on_service_delete(self, svc: Object) -> None:
        from tinykube.api import meta

        self.tracker.service_updated(None, key=meta.key(svc))
        self._queue()

    def _on_slice(self, slice_obj: Object) -> None:
        self.tracker.slice_updated(slice_obj)
        self._queue()

    def _on_slice_update(self, _old: Object, new: Object) -> None:
        self._on_slice(new)

    def _on_slice_delete(self, slice_obj: Object) -> None:
        self.tracker.slice_updated(slice_obj, deleted=True)
        self._queue()

    async def _sync(self) -> None:
        started = time.perf_counter()
        self._syncing = True  # the proxier's snapshot runs ahead of the kernel until done
        try:
            await self.proxier.sync()
        except Exception:
            self.health.queued()  # still behind: healthz turns 503 if this persists
            raise
        finally:
            self._syncing = False
        self.sync_count += 1
        self.health.updated()
        if self.config.mode == "userspace":  # the iptables and nftables proxiers report themselves
            self.metrics.sync_duration.observe(time.perf_counter() - started)
            self.metrics.last_timestamp.set(time.time())
        async with self._sync_done:
            self._sync_done.notify_all()

    async def start(self) -> None:
        """Serve health, list and watch, then sync; on failure what started is stopped."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if not self.config.dry_run and self.config.iptables_netns is None:
            require_tools(self.config.mode)
        await self._start_healthz()
        if self._proxier is None:
            await asyncio.to_thread(self._load)
        from tinykube.client.informer import InformerFactory
        from tinykube.client.rest import Client

        if self.config.client is not None:
            self._client = self.config.client
        else:
            self._client = Client.from_kubeconfig(self.config.kubeconfig, user_agent="kube-proxy",
                                                  on_request_done=self.metrics.count_request)
            self._owns_client = True
        await self._start_metrics()
        self._factory = InformerFactory(self._client)
        services = self._factory.informer("services", label_selector=SERVICE_SELECTOR)
        slices = self._factory.informer("endpointslices", "discovery.k8s.io", label_selector=SERVICE_SELECTOR)
        services.add_handlers(self._on_service, self._on_service_update, self._on_service_delete)
        slices.add_handlers(self._on_slice, self._on_slice_update, self._on_slice_delete)
        self.health.queued()
        await self._factory.start_all()
        # the first sync starts as soon as the caches are synced (minSyncPeriod only
        # spaces later ones); the ConfigMap is written while it runs
        self._runner_task = asyncio.create_task(self.runner.loop(), name="kube-proxy-sync")
        self.runner.run()
        if self.config.publish_configmap:
            await self._publish_configmap()

    async def _publish_configmap(self) -> None:
        from tinykube.api.errors import ApiError
        from tinykube.proxy.configmap import ensure_kube_proxy_configmap

        try:
            await ensure_kube_proxy_configmap(self._client, self.config)
        except ApiError as exc:  # e.g. not allowed to write kube-system: proxying still works
            log.warning("cannot publish the kube-proxy ConfigMap: %s", exc)

    async def _start_healthz(self) -> None:
        if self.config.healthz_bind_address:
            host, port = split_host_port(self.config.healthz_bind_address)
            server, self.healthz_port = await serve_healthz(self.health, host, port)
            self._servers.append(server)

    async def _start_metrics(self) -> None:
        from tinykube.proxy.health import metrics_app, serve

        if self.config.metrics_bind_address:
            host, port = split_host_port(self.config.metrics_bind_address)
            runner, self.metrics_port = await serve(metrics_app(self.metrics, self.health), host, port)
            self._servers.append(runner)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait (woken by each completed sync) until `predicate()` holds after a sync, not
        during one: a sync folds the changes into the snapshot before it programs them."""
        async def check() -> None:
            async with self._sync_done:
                await self._sync_done.wait_for(
                    lambda: self.sync_count > 0 and not self._syncing and predicate())

        await aio.wait_for(check(), timeout)

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Wait until every change received so far has been synced."""
        await self.wait_until(lambda: not self.tracker.pending, timeout)

    def endpoints_of(self, port_key: str) -> list[str]:
        """`ip:port` of the endpoints the last sync programmed for a ServicePortName."""
        return [e.address for e in self.proxier.snapshot.endpoints.get(port_key, ())]

    async def stop(self) -> None:
        if self._runner_task is not None:
            self._runner_task.cancel()
            await asyncio.gather(self._runner_task, return_exceptions=True)
            self._runner_task = None
        if self._factory is not None:
            await self._factory.stop_all()
        if self.config.mode == "userspace" and self._proxier is not None:
            await self._proxier.stop()  # type: ignore[union-attr]
        for runner in self._servers:
            await runner.cleanup()
        self._servers.clear()
        if self._owns_client and self._client is not None:
            await self._client.close()

    async def cleanup(self) -> None:
        """Remove every iptables chain and jump (or the nftables table) this proxy installed."""
        if self.config.mode in ("iptables", "nftables"):
            await self.proxier.cleanup()  # type: ignore[union-attr]


def require_tools(mode: str) -> None:
    """iptables and nftables modes need root and their tools; say so instead of failing later."""
    if mode == "userspace":
        return
    if os.geteuid() != 0:
        raise ConfigError(f"{mode} mode needs root (CAP_NET_ADMIN); use --mode userspace")
    if mode == "iptables":
        from tinykube.proxy.iptables.runner import Iptables

        if not Iptables.available():
            raise ConfigError("iptables mode needs iptables and iptables-restore in PATH")
        return
    if mode == "nftables":
        from tinykube.proxy.nftables.proxier import Nft

        if not Nft.available():
            raise ConfigError("nftables mode needs nft in PATH")


