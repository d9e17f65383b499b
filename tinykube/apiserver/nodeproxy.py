"""Connections through the API server to a pod's kubelet: logs, exec, attach, port-forward.

The API server never runs containers; it finds the pod's node (``spec.nodeName``), the
node's kubelet (its InternalIP and ``status.daemonEndpoints.kubeletEndpoint.Port``) and
relays: ``pods/log`` as a streamed GET of the kubelet's ``/containerLogs/...``, and
``exec``/``attach``/``portforward`` as a WebSocket (the ``v5.channel.k8s.io`` family of
subprotocols, or ``SPDY/3.1+portforward.k8s.io`` for port-forward) whose frames are
pumped both ways until either side closes. The kubelet's certificate is self-signed, so it
is not verified (as kube-apiserver does without ``--kubelet-certificate-authority``).
A SPDY upgrade (kubectl's exec before 1.30, port-forward before 1.31) is answered with 101
and its raw bytes go into the kubelet's WebSocket tunnel (``SPDY/3.1+<protocol>``); exec and
attach with a protocol older than v4.channel.k8s.io are refused.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import WSMsgType, web

from tinykube import aio
from tinykube.api import errors, kinds, meta
from tinykube.apiserver.componentstatus import go_http_error

log = logging.getLogger(__name__)

DEFAULT_KUBELET_PORT = 10250
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
LOG_OPTIONS = ("follow", "tailLines", "previous", "timestamps", "sinceSeconds", "sinceTime",
               "limitBytes", "insecureSkipTLSVerifyBackend")
STREAM_OPTIONS = ("stdin", "stdout", "stderr", "tty")
KUBELET_PATHS = {"exec": "exec", "attach": "attach", "portforward": "portForward"}
NODES = kinds.lookup("", "v1", "nodes")
CONNECT_TIMEOUT_SECONDS = 10.0


# -- where the kubelet is ------------------------------------------------------------------


def pick_container(pod: dict, requested: str) -> str:
    """The container a request means, with upstream's errors for the ambiguous cases."""
    name = meta.name(pod)
    spec = pod.get("spec") or {}
    containers = [c.get("name", "") for c in spec.get("containers") or []]
    init = [c.get("name", "") for c in spec.get("initContainers") or []]
    ephemeral = [c.get("name", "") for c in spec.get("ephemeralContainers") or []]
    if requested:
        if requested not in (*containers, *init, *ephemeral):
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    default = meta.annotations(pod).get(DEFAULT_CONTAINER_ANNOTATION, "")
    if default in containers:
        return default
    if len(containers) == 1:
        return containers[0]
    if not containers:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    message = (f"a container name must be specified for pod {name}, "
               f"choose one of: [{' '.join(containers)}]")
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    if ephemeral:
        message += f" or one of the ephemeral containers: [{' '.join(ephemeral)}]"
    raise errors.bad_request(message)


def node_address(node: dict) -> str:
    """The address kube-apiserver dials: InternalIP first, as its default preference."""
    addresses = (node.get("status") or {}).get("addresses") or []
    for wanted in ("InternalIP", "ExternalIP", "Hostname"):
        for address in addresses:
            if address.get("type") == wanted and address.get("address"):
                return address["address"]
    raise errors.bad_request(f"node {meta.name(node)} has no address")


def announced_port(node: dict) -> int | None:
    """The kubelet port the node announces (0: it serves none, as hollow nodes), if any."""
    endpoint = ((node.get("status") or {}).get("daemonEndpoints") or {}).get(
        "kubeletEndpoint") or {}
    return endpoint.get("Port")


def kubelet_port(node: dict) -> int:
    return int(announced_port(node) or DEFAULT_KUBELET_PORT)


def kubelet_base(server: Any, pod: dict) -> str:
    """``https://<node address>:<kubelet port>`` for the pod's node."""
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    if not node_name:
        raise errors.bad_request(f"pod {meta.name(pod)} does not have a host assigned")
    cached = server.watch_cache.get(NODES, "", node_name)
    if cached is None:
        raise errors.not_found(NODES, node_name)
    return node_base(server, cached.obj)


def node_base(server: Any, node: dict) -> str:
    """``https://<node address>:<kubelet port>`` for a node."""
    host = node_address(node)
    if ":" in host:
        host = f"[{host}]"
    scheme = getattr(server, "kubelet_scheme", "https")
    return f"{scheme}://{host}:{kubelet_port(node)}"


def _path(*segments: str) -> str:
    return "/" + "/".join(quote(s, safe="") for s in segments)


def log_url(base: str, pod: dict, container: str, query: Any) -> str:
    params = [(k, query[k]) for k in LOG_OPTIONS if k in query]
    url = base + _path("containerLogs", meta.namespace(pod), meta.name(pod), container)
    return url + ("?" + urlencode(params) if params else "")


def stream_url(base: str, subresource: str, pod: dict, container: str, query: Any) -> str:
    """The kubelet URL for exec/attach (``.../<container>``) or portForward (no container)."""
    segments = [KUBELET_PATHS[subresource], meta.namespace(pod), meta.name(pod)]
    params: list[tuple[str, str]] = []
    if subresource == "portforward":
        params += [("port", p) for p in query.getall("ports", [])]
    else:
        segments.append(container)
        params += [("command", c) for c in query.getall("command", [])]
        params += [(k, query[k]) for k in STREAM_OPTIONS if k in query]
    url = base + _path(*segments)
    return url + ("?" + urlencode(params) if params else "")


# -- relaying ------------------------------------------------------------------------------


async def _kubelet_error(resp: aiohttp.ClientResponse) -> errors.ApiError:
    """The kubelet's refusal as an API error: its Status if it sent one, else its text."""
    text = (await resp.text(errors="replace")).strip()
    if resp.content_type == "application/json":
        try:
            return errors.ApiError.from_status(await resp.json(), resp.status)
        except (ValueError, aiohttp.ContentTypeError):
            pass  # not a Status after all: report the text below
    reason = {400: "BadRequest", 404: "NotFound", 403: "Forbidden"}.get(resp.status,
                                                                        "InternalError")
    return errors.ApiError(resp.status, reason, text or f"kubelet answered {resp.status}")


def _unreachable(url: str, err: BaseException) -> errors.ApiError:
    return errors.ApiError(500, "InternalError", go_http_error(url, err))


async def proxy_logs(request: web.Request, server: Any, pod: dict) -> web.StreamResponse:
    """Stream the kubelet's container log to the client, chunk by chunk."""
    container = pick_container(pod, request.query.get("container", ""))
    url = log_url(kubelet_base(server, pod), pod, container, request.query)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(url, ssl=False) as upstream:
            if upstream.status != 200:
                raise await _kubelet_error(upstream)
            response = web.StreamResponse(status=200)
            response.content_type = "text/plain"
            response.headers["Transfer-Encoding"] = "chunked"
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                log.debug("client left the log stream of %s", meta.key(pod))
            return response
    except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as err:
        if isinstance(err, aiohttp.ServerDisconnectedError):
            raise errors.ApiError(500, "InternalError", "the kubelet closed the log stream") \
                from None
        raise _unreachable(url, err) from None


def _offered_protocols(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


async def _pump(source: Any, sink: Any) -> None:
    """Copy frames from one WebSocket to the other until the source closes."""
    async for msg in source:
        if msg.type == WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type == WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                          WSMsgType.ERROR):
            break


async def relay_websockets(client: web.WebSocketResponse,
                           kubelet: aiohttp.ClientWebSocketResponse) -> None:
    """Pump both directions; when either side ends, close the other one too."""
    try:
        await aio.first_to_end(_pump(client, kubelet), _pump(kubelet, client))
    finally:
        await kubelet.close()
        await client.close()



async def proxy_stream(request: web.Request, server: Any, subresource: str,
                       pod: dict) -> web.StreamResponse:
    """exec / attach / portforward over WebSocket, relayed to the kubelet; SPDY upgrades
    too (kubectl's exec before 1.30, port-forward before 1.31), as raw bytes into the
    kubelet's SPDY tunnel.

    The pod is checked before the protocol: kubectl falls back from WebSocket to SPDY on
    any refused upgrade, so the SPDY retry must carry the same answer (e.g. "does not
    have a host assigned") rather than only the protocol complaint.
    """
    container = ""
    if subresource != "portforward":
        container = pick_container(pod, request.query.get("container", ""))
    url = stream_url(kubelet_base(server, pod), subresource, pod, container, request.query)
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade.startswith("spdy"):
        return await _relay_spdy_upgrade(request, url, subresource)
    if upgrade != "websocket":
        raise errors.bad_request(f"{subresource} requires a WebSocket upgrade request "
                                 "(Upgrade: websocket, subprotocol v5.channel.k8s.io)")
    async with _session() as session:
        kubelet = await _dial_kubelet(session, url, _offered_protocols(request), subresource)
        client = web.WebSocketResponse(protocols=[kubelet.protocol] if kubelet.protocol
                                       else (), autoping=True, max_msg_size=0)
        await client.prepare(request)
        await relay_websockets(client, kubelet)
        return client


# What a SPDY upgrade may negotiate (X-Stream-Protocol-Version) per subresource, and the
# kubelet's WebSocket subprotocol that carries the same SPDY bytes.
SPDY_PROTOCOLS = {"portforward": ("portforward.k8s.io", "SPDY/3.1+portforward.k8s.io"),
                  "exec": ("v4.channel.k8s.io", "SPDY/3.1+v4.channel.k8s.io"),
                  "attach": ("v4.channel.k8s.io", "SPDY/3.1+v4.channel.k8s.io")}


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_SECONDS))


async def _dial_kubelet(session: aiohttp.ClientSession, url: str, protocols: list[str],
                        subresource: str) -> aiohttp.ClientWebSocketResponse:
    """The kubelet's end of a stream; its refusal or absence as the API error to answer."""
    try:
        return await session.ws_connect(url, protocols=protocols, ssl=False, autoping=True, max_msg_size=0)
    except aiohttp.WSServerHandshakeError as err:
        raise errors.ApiError(err.status if err.status >= 400 else 500,
                              "BadRequest" if err.status == 400 else "InternalError",
                              f"the kubelet refused the {subresource} stream: {err.message}") from None
    except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as err:
        raise _unreachable(url, err) from None


class _UpgradedBytes:
    """Stands in for the server's payload parser once a connection is upgraded: every byte
    the client sends after the 101 lands in ``queue`` (b"" at end of file)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


async def _relay_spdy_upgrade(request: web.Request, url: str, subresource: str) -> web.StreamResponse:
    """Answer kubectl's ``Upgrade: SPDY/3.1`` (exec and port-forward before the WebSocket
    protocols) and pump the raw session to and from the kubelet's WebSocket tunnel."""
    version, tunnel = SPDY_PROTOCOLS.get(subresource, ("", ""))
    offered = [v.strip() for h in request.headers.getall("X-Stream-Protocol-Version", [])
               for v in h.split(",")]
    if not version or not hasattr(request.protocol, "set_parser"):
        raise errors.bad_request(f"tinykube does not serve {subresource} over SPDY")
    if version not in offered:
        raise errors.bad_request(f"{subresource} over SPDY needs the {version} protocol; the client "
                                 f"offered {', '.join(offered) or 'none'}")
    async with _session() as session:
        kubelet = await _dial_kubelet(session, url, [tunnel], subresource)
        response = web.StreamResponse(status=101, headers={
            "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": version})
        response.force_close()
        await response.prepare(request)
        upgraded = _UpgradedBytes()
        request.protocol.set_parser(upgraded)  # type: ignore[arg-type]
        transport = request.transport
        if transport is None:  # the client left as the 101 went out
            await kubelet.close()
            return response

        async def to_kubelet() -> None:
            while data := await upgraded.queue.get():
                await kubelet.send_bytes(data)

        async def to_client() -> None:
            async for msg in kubelet:
                if msg.type != WSMsgType.BINARY:
                    break
                transport.write(msg.data)

        try:
            await aio.first_to_end(to_kubelet(), to_client())
        finally:
            await kubelet.close()
            transport.close()
        return response


async def handle(request: web.Request, server: Any, subresource: str,
                 pod: dict) -> web.StreamResponse:
    """Entry point from the core's subresource dispatcher."""
    if subresource == "log":
        return await proxy_logs(request, server, pod)
    if subresource in KUBELET_PATHS:
        return await proxy_stream(request, server, subresource, pod)
    raise errors.bad_request(f"subresource {subresource} is not proxied to the kubelet")
