"""The API server process: configuration, lifecycle and the request pipeline.

Contract with the plug-in modules of this package (version, health, discovery, openapi,
metrics, audit, authz_review, componentstatus, metricsapi, nodeproxy):

- ``APIServer(config)`` builds ``.app`` (an aiohttp ``web.Application``) in its
  constructor and calls each plug-in's ``setup(app, server)`` in the order of ``PLUGINS``;
  a plug-in adds routes, middlewares or startup/cleanup hooks there.
- ``await start()`` opens ``.store``, fills ``.watch_cache`` (``list(info, namespace,
  ...)``, ``get(info, namespace, name)``), bootstraps the default objects and listens;
  ``.url`` and ``.port`` are valid afterwards. ``await stop()`` undoes all of it.
- Every request passes the pipeline middleware: it parses a
  :class:`~tinykube.apiserver.request.RequestInfo` (``request[REQUEST_INFO]``), runs
  ``server.authenticator`` (sets ``info.user``) and ``server.authorizer``, then the
  handler. When the response is done, each callable in ``server.request_observers`` gets
  ``(info, status_code, duration_seconds)``.
- ``pods/log``, ``exec``, ``attach`` and ``portforward`` are handed to
  ``tinykube.apiserver.nodeproxy.handle(request, server, subresource, pod)``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import yaml
from aiohttp import web

from tinykube.api import errors
from tinykube.apiserver.authn import Authenticator, StaticTokenFile, Unauthorized
from tinykube.apiserver.authz import build_authorizer
from tinykube.apiserver.request import REQUEST_INFO, RequestInfo, parse_request_info

log = logging.getLogger(__name__)

# Plug-in modules of this package, in the order their setup() runs.
PLUGINS = ("version", "health", "discovery", "openapi", "metrics", "audit", "authz_review",
           "componentstatus", "metricsapi")

DEFAULT_ADMISSION_PLUGINS = ("NamespaceLifecycle", "LimitRanger", "ServiceAccount",
                             "DefaultTolerationSeconds", "Priority", "ResourceQuota")

RequestObserver = Callable[[RequestInfo, int, float], None]

SERVER_KEY: web.AppKey["APIServer"] = web.AppKey("server")
INFLIGHT_GRACE_SECONDS = 5.0


@dataclass
class APIServerConfig:
    """kube-apiserver's flags that tinykube honours, with upstream's defaults."""

    store_url: str = "memory://"
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443  # 0 picks a free port
    token_file: str | None = None
    anonymous_auth: bool = True
    audit_policy_file: str | None = None
    audit_log_path: str | None = None
    audit_log_maxage: int = 0
    audit_log_maxbackup: int = 0
    audit_log_maxsize: int = 0
    service_cluster_ip_range: str = "10.96.0.0/12"
    service_node_port_range: str = "30000-32767"
    max_request_bytes: int = 3 * 1024 * 1024
    enable_admission_plugins: list[str] = field(
        default_factory=lambda: list(DEFAULT_ADMISSION_PLUGINS))
    authorization_mode: str = "AlwaysAllow"
    write_kubeconfig: str | None = None
    # HTTPS (``--tls-cert-file``/``--tls-private-key-file``, or a self-signed certificate
    # made once in ``--cert-dir``); plain HTTP without either, as tinykube up runs it
    tls_cert_file: str | None = None
    tls_private_key_file: str | None = None
    cert_dir: str | None = None
    # Where the service account signing key is kept; None keeps it in the store.
    service_account_key_file: str | None = None
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    event_ttl_seconds: int = 3600
    # Store compaction (``--etcd-compaction-interval``); 0 disables it.
    etcd_compaction_interval: float = 300.0
    # Interval of BOOKMARK events on watches that allow them (upstream: about a minute).
    watch_bookmark_interval: float = 60.0
    # How many recent events each resource's watch cache keeps for watch resumption.
    watch_cache_size: int = 10000
    # The address written into the kubernetes Service's Endpoints (default: bind address).
    advertise_address: str | None = None
    bootstrap: bool = True
    # How long start() waits for an unreachable store before giving up.
    store_wait_seconds: float = 60.0


def _load_plugin(name: str) -> Any | None:
    """Import a plug-in module; only its own absence is tolerated."""
    module_name = f"tinykube.apiserver.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return None


class APIServer:
    """kube-apiserver: the REST API over a store, with a watch cache in front of it."""

    def __init__(self, config: APIServerConfig | None = None):
        from tinykube.apiserver.admission import build_admission_chain
        from tinykube.apiserver.routes import add_resource_routes
        from tinykube.apiserver.tokens import TokenSigner

        self.config = config or APIServerConfig()
        self.store: Any = None
        self.watch_cache: Any = None
        self.port = 0
        self.request_observers: list[RequestObserver] = []
        self.authenticator = Authenticator(anonymous=self.config.anonymous_auth)
        if self.config.token_file:
            self.authenticator.token_authenticators.append(
                StaticTokenFile.load(self.config.token_file))
        self.token_signer = TokenSigner(self.config.service_account_issuer)
        self.authenticator.token_authenticators.append(self.token_signer)
        self.authorizer = build_authorizer(self.config.authorization_mode, self)
        self.admission = build_admission_chain(self.config.enable_admission_plugins, self)
        self.app = web.Application(middlewares=[self._pipeline],
                                   client_max_size=self.config.max_request_bytes + 1)
        self.app[SERVER_KEY] = self
        self.app.on_response_prepare.append(_note_started)
        self._runner: web.AppRunner | None = None
        self._started = False
        self._inflight: set[asyncio.Task] = set()
        self._compactor: Any = None
        self.cluster_ips: Any = None
        self.node_ports: Any = None
        self.serving_cert: Any = None  # a pki.KeyPair once serving HTTPS
        self.serving_ca_pem: bytes | None = None  # what clients verify it with, when known
        for name in PLUGINS:
            module = _load_plugin(name)
            if module is not None:
                module.setup(self.app, self)
        add_resource_routes(self.app, self)

    @property
    def url(self) -> str:
        scheme = "https" if self.serving_cert is not None else "http"
        return f"{scheme}://{self.config.bind_address}:{self.port}"

    @property
    def tls(self) -> bool:
        c = self.config
        return bool(c.cert_dir or (c.tls_cert_file and c.tls_private_key_file))

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        from tinykube.apiserver.bootstrap import bootstrap
        from tinykube.apiserver.registry.allocator import ClusterIPAllocator, NodePortAllocator
        from tinykube.apiserver.watchcache import WatchCache
        from tinykube.storage.compactor import Compactor
        from tinykube.storage.store import open_store

        self.store = open_store(self.config.store_url)
        try:
            await self._wait_for_store()
            self.token_signer.load_or_create(self.config.service_account_key_file,
                                             self.config.store_url)
            self.cluster_ips = ClusterIPAllocator(self.store,
                                                  self.config.service_cluster_ip_range)
            self.node_ports = NodePortAllocator(self.store, self.config.service_node_port_range)
            self.watch_cache = WatchCache(self.store, self.config.watch_cache_size)
            await self.watch_cache.start()
            if self.config.etcd_compaction_interval > 0:
                self._compactor = Compactor(self.store, self.config.etcd_compaction_interval)
                self._compactor.start()
            self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0,
                                         handler_cancellation=True)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.config.bind_address, self.config.secure_port,
                               backlog=4096, ssl_context=self._ssl_context())
            await site.start()
            self.port = self._runner.addresses[0][1]
            if self.config.bootstrap:
                await bootstrap(self)
        except BaseException:
            await self.stop()
            raise
        self._started = True
        if self.config.write_kubeconfig:
            self.write_kubeconfig(self.config.write_kubeconfig)
        log.info("tinykube apiserver listening on %s", self.url)

    def _ssl_context(self) -> Any:
        """The serving context with HTTPS, else None. In ``cert_dir`` a CA and a certificate
        for localhost and the bind address are made on first start and kept, as
        kube-apiserver's self-signed certificate."""
        if not self.tls:
            return None
        from pathlib import Path

        from tinykube.client import pki

        c = self.config
        if c.tls_cert_file and c.tls_private_key_file:
            self.serving_cert = pki.KeyPair.read(Path(c.tls_cert_file), Path(c.tls_private_key_file))
        else:
            directory = Path(c.cert_dir or ".")
            cert, key = directory / "apiserver.crt", directory / "apiserver.key"
            ca = pki.KeyPair.read(pki.ensure_ca(directory), directory / "ca.key")
            if not (cert.exists() and key.exists()):
                hosts = ["localhost", "127.0.0.1", c.bind_address, "kubernetes", "kubernetes.default",
                         "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
                pki.serving_cert("kube-apiserver", list(dict.fromkeys(hosts)), ca).write(cert, key)
            self.serving_cert = pki.KeyPair.read(cert, key)
            self.serving_ca_pem = ca.cert_pem
        return self.serving_cert.server_context()

    async def _wait_for_store(self) -> None:
        """Wait for the store to answer, as kube-apiserver waits for etcd: in a cluster whose
        etcd starts beside the API server (static pods), etcd may still be coming up."""
        from tinykube.client.wait import retry_with_backoff
        from tinykube.storage.store import UnavailableError

        await retry_with_backoff(self.store.current_revision, UnavailableError, "the store", log,
                                 timeout=self.config.store_wait_seconds)

    async def stop(self) -> None:
        self._started = False
        if self.watch_cache is not None:
            self.watch_cache.close_watchers()  # open watch streams end now, not at a timeout
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._inflight:
            # writes whose clients left finish first; a stuck one is cancelled, not awaited
            _, stuck = await asyncio.wait(set(self._inflight), timeout=INFLIGHT_GRACE_SECONDS)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.gather(*stuck, return_exceptions=True)
        if self._compactor is not None:
            await self._compactor.stop()
            self._compactor = None
        if self.watch_cache is not None:
            await self.watch_cache.stop()
        if self.store is not None:
            await self.store.close()
            self.store = None

    def write_kubeconfig(self, path: str, token: str | None = None) -> None:
        """A kubeconfig for this server that kubectl uses as is (over HTTPS it trusts the
        CA of a self-signed certificate; one from files it must already trust)."""
        write_kubeconfig(path, self.url, token, ca_pem=self.serving_ca_pem)

    async def run_shielded(self, coro: Awaitable[web.StreamResponse]) -> web.StreamResponse:
        """Run a write to completion even if its client disconnects; stop() waits for it."""
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_report_orphaned_write)
            raise


    # --- the pipeline ------------------------------------------------------------

    @web.middleware
    async def _pipeline(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        """authentication -> authorization -> the handler, with observers at the end."""
        from tinykube.apiserver.responses import status_response

        info = parse_request_info(request.method, request.path, request.query)
        info.source_ip = request.remote or ""
        info.user_agent = request.headers.get("User-Agent", "")
        info.request_uri = request.path_qs
        request[REQUEST_INFO] = info
        started = time.perf_counter()
        status = 500
        try:
            try:
                info.user = self.authenticator.authenticate(request)
            except Unauthorized:
                raise errors.unauthorized() from None
            decision = await self.authorizer.authorize(info)
            if not decision.allowed:
                raise _forbidden(info, decision.reason)
            response = await handler(request)
            status = response.status
            return response
        except asyncio.CancelledError:
            # the client went away; a watch or stream whose headers were sent answered those
            status = info.sent_status or status
            raise
        except errors.ApiError as err:
            status = err.code
            return status_response(request, err)
        except web.HTTPNotFound:
            status = 404
            return status_response(request, errors.ApiError(
                404, "NotFound", "the server could not find the requested resource"))
        except web.HTTPMethodNotAllowed as exc:
            status = 405
            return status_response(request, errors.ApiError(
                405, "MethodNotAllowed", f"the server does not allow this method on the "
                f"requested resource ({exc.method})"))
        except web.HTTPRequestEntityTooLarge:
            status = 413
            return status_response(request, errors.request_entity_too_large(
                f"limit is {self.config.max_request_bytes}"))
        except web.HTTPException:
            raise
        except Exception as exc:  # a fault of ours: log it, answer a Status, never a trace
            log.exception("internal error serving %s %s", request.method, request.path)
            status = 500
            return status_response(request, errors.internal_error(
                f"{type(exc).__name__}: {exc}"))
        finally:
            self._observe(info, status, time.perf_counter() - started)

    def _observe(self, info: RequestInfo, status: int, seconds: float) -> None:
        for observer in self.request_observers:
            try:
                observer(info, status, seconds)
            except Exception:  # an observer's fault must not fail the request
                log.exception("request observer %r failed", observer)


async def _note_started(request: web.Request, response: web.StreamResponse) -> None:
    """Remember the status a response went out with, for a handler cancelled after it."""
    info: RequestInfo | None = request.get(REQUEST_INFO)
    if info is not None:
        info.sent_status = response.status


def write_kubeconfig(path: str, server: str, token: str | None = None,
                     name: str = "tinykube", ca_pem: bytes | None = None) -> None:
    """Cluster, user and context all named ``name``; current-context set, mode 0600."""
    import base64

    user: dict[str, Any] = {"token": token} if token else {}
    cluster: dict[str, Any] = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    doc = {"apiVersion": "v1", "kind": "Config", "preferences": {},
           "clusters": [{"name": name, "cluster": cluster}],
           "users": [{"name": name, "user": user}],
           "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
           "current-context": name}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, default_flow_style=False, sort_keys=False)


def _forbidden(info: RequestInfo, reason: str) -> errors.ApiError:
    user = info.user.name
    if not info.is_resource_request:
        detail = f'User "{user}" cannot {info.verb} path "{info.path}"'
        return errors.forbidden(None, "", detail + (f": {reason}" if reason else ""))
    resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
    detail = (f'User "{user}" cannot {info.verb} resource "{resource}" in API group '
              f'"{info.api_group}"')
    detail += f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
    if reason:
        detail += f": {reason}"
    return errors.forbidden(resource, info.name, detail, info.api_group)


def _report_orphaned_write(task: asyncio.Task) -> None:
    """A write whose client left: nobody else will see how it ended."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, (errors.ApiError, web.HTTPException)):
        log.error("write failed after its client left: %r", exc)
