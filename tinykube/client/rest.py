"""The async REST client every tinykube component uses to reach the API server.

Unary requests go through the client's own keep-alive pool (``tinykube.client.http``, far
cheaper per request than aiohttp); watches and followed logs stream over one aiohttp session
per ``Client``. JSON is encoded and decoded with orjson. URLs are
built from the kinds registry exactly as kube-apiserver serves them: ``/api/v1`` for the core
group, ``/apis/<group>/<version>`` otherwise, and ``/namespaces/<ns>/`` for namespaced kinds.
Every non-2xx answer becomes ``tinykube.api.errors.ApiError`` carrying the server's Status;
transport failures become ``ConnectionError``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from tinykube.api import kinds
from tinykube.api.errors import ApiError
from tinykube.client import pki
from tinykube.client.http import ConnectionPool, Origin, request_target

PATCH_CONTENT_TYPES: dict[str, str] = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}

# Enough sockets for hundreds of concurrent requests (a scheduler binding in parallel,
# thousands of hollow nodes renewing Leases) without opening one per request.
DEFAULT_POOL_SIZE = 512
# The aiohttp session's limits (streams); the unary pool keeps the same ones: 10 s to connect,
# 60 s for a whole request. sock_connect, not connect: waiting for a free pooled connection
# is not a connect failure.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)
WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)

Object = dict[str, Any]
# Called as (code, method, host) once per request: code is the HTTP status, or "<error>"
# when no answer came; host is "host[:port]" (the scheme's default port left out).
RequestHook = Callable[[str, str, str], None]


def _reason_for(code: int) -> str:
    """The Status reason upstream uses for an HTTP code, for bodies that are not a Status."""
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        406: "NotAcceptable",
        409: "Conflict",
        410: "Expired",
        413: "RequestEntityTooLarge",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }.get(code, "Unknown")


def error_from_response(code: int, body: bytes) -> ApiError:
    """Turn an error answer into ApiError, preferring the server's own Status object."""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        parsed.setdefault("code", code)
        return ApiError.from_status(parsed)
    message = body.decode("utf-8", "replace").strip() or f"the server returned HTTP {code}"
    return ApiError(code, _reason_for(code), message)


def _host_label(server: str) -> str:
    """The server's "host[:port]", as request metrics label it ('' for a malformed URL)."""
    try:
        return Origin.parse(server).host_header
    except ValueError:
        return ""


def _build_ssl(
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    insecure: bool,
    ca_data: bytes | None = None,
    cert_data: bytes | None = None,
    key_data: bytes | None = None,
) -> ssl.SSLContext:
    """The TLS context for https servers: the cluster CA, optionally a client certificate."""
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    if ca_data:
        ctx.load_verify_locations(cadata=ca_data.decode())
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    elif cert_data:
        pki.load_cert_chain(ctx, cert_data, key_data or cert_data)
    return ctx


class Client:
    """A connection to one API server; create resource clients with ``resource()``."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        insecure: bool = False,
        user_agent: str = "tinykube",
        *,
        ca_data: bytes | None = None,
        cert_data: bytes | None = None,
        key_data: bytes | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        on_request_done: RequestHook | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.user_agent = user_agent
        self._pool_size = pool_size
        self._on_request_done = on_request_done  # e.g. kube-proxy's rest_client metrics
        self._host = _host_label(self.server)
        self._ssl: ssl.SSLContext | None = None
        if self.server.startswith("https://"):
            self._ssl = _build_ssl(
                ca_file, cert_file, key_file, insecure, ca_data, cert_data, key_data
            )
        self._session: aiohttp.ClientSession | None = None
        self._pool: ConnectionPool | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, context: str | None = None,
                        **kwargs: Any) -> Client:
        """A client for the kubeconfig's current (or the named) context."""
        from tinykube.client.kubeconfig import load_kubeconfig

        creds = load_kubeconfig(path, context)
        return cls(
            creds.server,
            token=creds.token,
            ca_file=creds.ca_file,
            cert_file=creds.cert_file,
            key_file=creds.key_file,
            insecure=creds.insecure,
            ca_data=creds.ca_data,
            cert_data=creds.cert_data,
            key_data=creds.key_data,
            **kwargs,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    @property
    def pool(self) -> ConnectionPool:
        """The keep-alive pool for unary requests, created on first use."""
        if self._pool is None:
            self._pool = ConnectionPool(self.server, self._ssl, self._pool_size, self._headers())
        return self._pool

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session for streams, created on first use (it needs a running loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=self._pool_size, ssl=self._ssl or False,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self._headers(), timeout=DEFAULT_TIMEOUT,
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests ----------------------------------------------------------------------

    def resource(self, name: str, group: str | None = None) -> ResourceClient:
        """A client for one resource, found by plural, singular, kind or short name."""
        try:
            info = kinds.resolve(name, group)
        except KeyError:
            raise ApiError(
                404, "NotFound",
                f'the server doesn\'t have a resource type "{name}"',
            ) from None
        return ResourceClient(self, info)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request; returns the decoded JSON answer (None for an empty body)."""
        raw = await self.request_raw(method, path, params=params, body=body,
                                     content_type=content_type)
        return orjson.loads(raw) if raw else None

    async def request_raw(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> bytes:
        """One request; returns the answer's body bytes, raising ApiError for HTTP >= 400."""
        data: bytes | None = None
        if body is not None:
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else orjson.dumps(body))
        pool = self.pool
        try:
            resp = await pool.request(method, request_target(pool.origin, path, params), data,
                                      content_type if data is not None else None)
        except ConnectionError as exc:
            self._request_done("<error>", method)
            raise ConnectionError(f"{method} {self.server}{path}: {exc}") from exc
        except BaseException:  # a timeout or a cancellation: no answer either
            self._request_done("<error>", method)
            raise
        self._request_done(str(resp.status), method)
        if resp.status >= 400:
            raise error_from_response(resp.status, resp.body)
        return resp.body

    def _request_done(self, code: str, method: str) -> None:
        if self._on_request_done is not None:
            self._on_request_done(code, method, self._host)

    async def get_raw(self, path: str) -> bytes:
        """GET any path (``/healthz``, ``/version``, a log) and return the body bytes."""
        return await self.request_raw("GET", path)

    async def stream_lines(self, path: str, params: dict[str, str]) -> AsyncIterator[bytes]:
        """GET a streaming response and yield it line by line (watches, followed logs)."""
        try:
            try:
                response = await self.session.get(
                    self.server + path, params=params, timeout=WATCH_TIMEOUT)
            except BaseException:
                self._request_done("<error>", "GET")
                raise
            self._request_done(str(response.status), "GET")
            async with response as resp:
                if resp.status >= 400:
                    raise error_from_response(resp.status, await resp.read())
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    while (nl := buffer.find(b"\n")) >= 0:
                        line, buffer = buffer[:nl], buffer[nl + 1:]
                        if line.strip():
                            yield line
                if buffer.strip():
                    yield buffer
        except aiohttp.ClientPayloadError as exc:
            raise ConnectionError(f"watch {path}: {exc}") from exc
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionError(f"watch {self.server}{path}: {exc}") from exc


def _clean(params: dict[str, Any]) -> dict[str, str]:
    """Query parameters with None dropped and booleans spelled as the API expects."""
    out: dict[str, str] = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


class ResourceClient:
    """CRUD, patch, watch and subresources of one resource kind."""

    def __init__(self, client: Client, info: kinds.ResourceInfo) -> None:
        self.client = client
        self.info = info
        prefix = "/api" if not info.group else f"/apis/{info.group}"
        self._base = f"{prefix}/{info.version}"

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of the collection, one object, or one object's subresource."""
        parts = [self._base]
        if self.info.namespaced and namespace:
            parts.append(f"/namespaces/{quote(namespace, safe='')}")
        parts.append(f"/{self.info.resource}")
        if name is not None:
            if not name:
                raise ApiError(400, "BadRequest", "resource name may not be empty")
            parts.append(f"/{quote(name, safe='')}")
            if subresource:
                parts.append(f"/{subresource}")
        return "".join(parts)

    def _namespace_of(self, obj: Object, namespace: str | None) -> str | None:
        if not self.info.namespaced:
            return None
        return namespace or obj.get("metadata", {}).get("namespace") or "default"

    async def get(self, name: str, *, namespace: str | None = None) -> Object:
        return await self.client.request("GET", self.path(namespace, name))

    async def list(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> Object:
        params = _clean({
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "limit": limit, "continue": continue_, "resourceVersion": resource_version,
        })
        return await self.client.request("GET", self.path(namespace), params=params)

    async def create(self, obj: Object, *, namespace: str | None = None, dry_run: bool = False,
                     field_manager: str | None = None) -> Object:
        params = _clean({"dryRun": "All" if dry_run else None, "fieldManager": field_manager})
        ns = self._namespace_of(obj, namespace)
        return await self.client.request("POST", self.path(ns), params=params, body=obj)

    async def update(self, obj: Object, *, subresource: str | None = None) -> Object:
        meta = obj.get("metadata", {})
        ns = self._namespace_of(obj, None)
        return await self.client.request(
            "PUT", self.path(ns, meta.get("name", ""), subresource), body=obj)

    async def patch(
        self,
        name: str,
        body: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "strategic",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> Object:
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(f"unknown patch type {patch_type!r}; "
                             f"expected one of {sorted(PATCH_CONTENT_TYPES)}")
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params = _clean({"fieldManager": field_manager,
                         "force": True if force and patch_type == "apply" else None})
        return await self.client.request(
            "PATCH", self.path(namespace, name, subresource), params=params, body=body,
            content_type=content_type)

    async def delete(
        self,
        name: str,
        *,
        namespace: str | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> Object:
        options: Object = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        return await self.client.request("DELETE", self.path(namespace, name), body=options)

    async def create_subresource(self, name: str, subresource: str, body: Object, *,
                                 namespace: str | None = None) -> Object:
        return await self.client.request(
            "POST", self.path(namespace, name, subresource), body=body)

    async def watch(
        self,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[tuple[str, Object]]:
        """Stream (type, object) pairs; an ERROR event (410 Expired included) raises."""
        params = _clean({
            "watch": "true", "labelSelector": label_selector, "fieldSelector": field_selector,
            "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": True if allow_bookmarks else None,
        })
        async for line in self.client.stream_lines(self.path(namespace), params):
            event = decode_watch_event(line)
            yield event


def decode_watch_event(line: bytes) -> tuple[str, Object]:
    """One watch line -> (type, object); ERROR events raise the Status they carry."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ApiError(500, "InternalError", f"malformed watch event: {exc}") from None
    etype = event.get("type", "")
    obj = event.get("object") or {}
    if etype == "ERROR":
        if obj.get("kind") == "Status":
            obj.setdefault("code", 500)
            raise ApiError.from_status(obj)
        raise ApiError(500, "InternalError", f"watch error: {obj}")
    return etype, obj
