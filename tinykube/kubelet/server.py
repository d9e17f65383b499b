"""The kubelet server: HTTPS :10250 (pods, metrics, logs, exec, attach, port-forward) and
HTTP :10248 (healthz).

Paths are upstream's, because the API server proxies ``pods/log`` to
``/containerLogs/<ns>/<pod>/<container>``, ``pods/exec`` to ``/exec/<ns>/<pod>/<container>``
and ``pods/attach`` to ``/attach/<ns>/<pod>/<container>`` (a WebSocket speaking ``v5.channel.k8s.io`` or
``v4.channel.k8s.io``: every binary frame starts with its channel, 0 stdin, 1 stdout,
2 stderr, 3 the final Status, 4 terminal resize; v5 lets the client close stdin with
``[255, 0]``). The certificate is self-signed at start, as a kubelet without
``--tls-cert-file`` does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tinykube.client import pki
from tinykube.kubelet import remotecommand, spdy
from tinykube.kubelet.portforward import (CHANNEL_PROTOCOL, TUNNEL_PROTOCOL, PortForwarder,
                                          forward_channels, parse_port)
from tinykube.kubelet.remotecommand import error_status
from tinykube.kubelet.runtime.interface import ContainerState, CRIError
from tinykube.kubelet.runtime.logs import LogOptions, parse_rfc3339nano, read_log

if TYPE_CHECKING:
    from tinykube.kubelet.kubelet import Kubelet

log = logging.getLogger(__name__)

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def self_signed_cert(directory: str, hostname: str, ip: str) -> tuple[str, str]:
    """Write a self-signed serving certificate for the node; returns (cert, key) paths."""
    hosts = [hostname, "localhost", "127.0.0.1"] + ([ip] if ip not in ("", "127.0.0.1") else [])
    pair = pki.serving_cert(f"{hostname}@{int(time.time())}", hosts)
    cert_path = Path(directory) / "kubelet.crt"
    key_path = Path(directory) / "kubelet.key"
    pair.write(cert_path, key_path)
    return str(cert_path), str(key_path)


def _flag(query: Any, name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true")


def _int(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f'invalid value for {name}: "{value}"') from None


class KubeletServer:
    def __init__(self, kubelet: "Kubelet") -> None:
        self.kubelet = kubelet
        self.port = kubelet.config.port
        self.healthz_port = kubelet.config.healthz_port
        self._runners: list[web.AppRunner] = []
        self._streams: set[asyncio.Task] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/pods", self.pods)
        app.router.add_get("/pods/", self.pods)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/metrics/probes", self.metrics_probes)
        app.router.add_get("/stats/summary", self.stats_summary)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        for method in ("GET", "POST"):
            app.router.add_route(method, "/exec/{namespace}/{pod}/{container}", self.exec)
            app.router.add_route(method, "/exec/{namespace}/{pod}/{uid}/{container}", self.exec)
            app.router.add_route(method, "/attach/{namespace}/{pod}/{container}", self.attach)
            app.router.add_route(method, "/attach/{namespace}/{pod}/{uid}/{container}", self.attach)
            app.router.add_route(method, "/portForward/{namespace}/{pod}", self.port_forward)
            app.router.add_route(method, "/portForward/{namespace}/{pod}/{uid}", self.port_forward)
        return app

    async def start(self) -> None:
        cfg = self.kubelet.config
        # on a thread: the static pods' workers, started just before, go on meanwhile
        cert, key = await asyncio.to_thread(self_signed_cert, os.path.join(self.kubelet.root_dir, "pki"),
                                            self.kubelet.node_name, self.kubelet.host_ip)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        main = web.AppRunner(self.app(), access_log=None)
        await main.setup()
        site = web.TCPSite(main, cfg.address, cfg.port, ssl_context=ctx)
        await site.start()
        self._runners.append(main)
        self.port = main.addresses[0][1]
        health = web.Application()
        health.router.add_get("/healthz", self.healthz)
        hrunner = web.AppRunner(health, access_log=None)
        await hrunner.setup()
        await web.TCPSite(hrunner, cfg.healthz_bind_address, cfg.healthz_port).start()
        self._runners.append(hrunner)
        self.healthz_port = hrunner.addresses[0][1]

    async def stop(self) -> None:
        for task in list(self._streams):
            task.cancel()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    # -- simple endpoints ----------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.kubelet.pod_list()), content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.kubelet.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def metrics_probes(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.kubelet.metrics.probes_registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def stats_summary(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(await self.kubelet.stats.summary()), content_type="application/json")

    def _worker(self, namespace: str, pod: str):
        worker = self.kubelet.workers.find(namespace, pod)
        if worker is None:
            raise web.HTTPNotFound(text=f'pod "{pod}" in namespace "{namespace}" not found')
        return worker

    # -- logs ----------------------------------------------------------------------------
    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        worker = self._worker(ns, pod)
        rec = worker.container_record(container)
        q = request.query
        if rec is None:
            raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is waiting to start: '
                                          'ContainerCreating')
        previous = _flag(q, "previous")
        status = rec.last_terminated if previous else rec.current
        if status is None:
            if previous:
                raise web.HTTPBadRequest(text=f'previous terminated container "{container}" in pod "{pod}" not found')
            reason = rec.waiting_reason or "ContainerCreating"
            raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is waiting to start: {reason}')
        opts = LogOptions(follow=_flag(q, "follow") and not previous, tail_lines=_int(q, "tailLines"),
                          timestamps=_flag(q, "timestamps"), limit_bytes=_int(q, "limitBytes"))
        since = _int(q, "sinceSeconds")
        if since is not None:
            opts.since_time = time.time() - since
        elif q.get("sinceTime"):
            try:
                opts.since_time = parse_rfc3339nano(q["sinceTime"])
            except ValueError:
                raise web.HTTPBadRequest(text=f'invalid sinceTime "{q["sinceTime"]}"') from None
        runtime = self.kubelet.runtime
        container_id = status.id

        def exited() -> asyncio.Event:
            event = asyncio.Event()

            async def wait() -> None:
                try:
                    await runtime.wait_container(container_id)
                except CRIError:
                    pass
                event.set()
            task = asyncio.create_task(wait())
            self._streams.add(task)
            task.add_done_callback(self._streams.discard)
            return event

        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            async for chunk in read_log(status.log_path, opts, exited):
                await response.write(chunk)
        except ConnectionResetError:
            log.debug("log client of %s/%s went away", ns, pod)
        await response.write_eof()
        return response

    # -- exec ----------------------------------------------------------------------------
    async def exec(self, request: web.Request) -> web.StreamResponse:
        command = request.query.getall("command", [])
        if not command:
            raise web.HTTPBadRequest(text="you must specify at least 1 command")
        return await self._remote_command(request, command)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(request, None)

    async def _remote_command(self, request: web.Request, command: list[str] | None) -> web.StreamResponse:
        """An exec of ``command``, or an attach (``None``), over WebSocket channels or SPDY."""
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        q = request.query
        worker = self._worker(ns, pod)
        rec = worker.container_record(container)
        ws = web.WebSocketResponse(protocols=PROTOCOLS + (remotecommand.SPDY_TUNNEL,), max_msg_size=0)
        await ws.prepare(request)
        refusal = None
        if rec is None or rec.current is None or rec.current.state != ContainerState.CONTAINER_RUNNING:
            refusal = (f'container not found ("{container}")' if rec is None else
                       f"container {container} is not running")
        tty, stdin = _flag(q, "tty"), _flag(q, "stdin")
        runtime, container_id = self.kubelet.runtime, rec.current.id if refusal is None else ""

        def start() -> Any:
            if command is None:
                return runtime.attach(container_id, stdin=stdin)
            return runtime.exec(container_id, command, tty=tty, stdin=stdin)

        if ws.ws_protocol == remotecommand.SPDY_TUNNEL:
            expected = remotecommand.expected_streams(stdin, _flag(q, "stdout"), _flag(q, "stderr"), tty)
            await self._exec_over_spdy(ws, expected, start, command or [], refusal)
            return ws
        if refusal is not None:
            await self._send(ws, ERROR, json.dumps(error_status(refusal)).encode())
            await ws.close()
            return ws
        try:
            session = await start()
        except CRIError as exc:
            await self._send(ws, ERROR, json.dumps(error_status(exc.message)).encode())
            await ws.close()
            return ws
        await StreamSession(ws, session, command or [], v5=ws.ws_protocol == PROTOCOLS[0]).run()
        return ws

    async def _exec_over_spdy(self, ws: web.WebSocketResponse, expected: frozenset[str], start: Any,
                              command: list[str], refusal: str | None) -> None:
        """remotecommand v4 over SPDY, relayed by the API server for kubectl before 1.30."""
        streams = remotecommand.ExecStreams(expected)
        session = spdy.Session(ws.send_bytes, streams.on_stream)
        feeding = asyncio.create_task(_feed_spdy(ws, session))
        try:
            opened = asyncio.create_task(streams.complete.wait())
            await asyncio.wait({opened, feeding}, timeout=remotecommand.STREAM_CREATION_TIMEOUT,
                               return_when=asyncio.FIRST_COMPLETED)
            opened.cancel()
            if streams.complete.is_set():
                await remotecommand.run_exec(streams.streams, start, command, refusal)
            else:
                log.info("exec over SPDY: the client opened %s of %s", sorted(streams.streams), sorted(expected))
        except ConnectionError as exc:
            log.debug("exec over SPDY ended: %s", exc)
        finally:
            session.close()
            feeding.cancel()
            await asyncio.gather(feeding, return_exceptions=True)
            await ws.close()

    # -- port-forward --------------------------------------------------------------------
    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """portforward.k8s.io over SPDY carried in a WebSocket (kubectl; the API server turns
        older kubectl's SPDY upgrade into the same), or upstream's WebSocket channels."""
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        worker = self._worker(ns, pod)
        ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL, CHANNEL_PROTOCOL), max_msg_size=0)
        tunnel = ws.can_prepare(request).protocol == TUNNEL_PROTOCOL
        ports = [parse_port(p) for value in request.query.getall("port", []) for p in value.split(",")]
        if not tunnel and (not ports or None in ports):
            raise web.HTTPBadRequest(text="port-forward over WebSocket channels needs valid port "
                                          "parameters, one per port")
        sandbox = worker.sandbox_id
        if not sandbox:
            raise web.HTTPBadRequest(text=f"pod {pod} has no running sandbox to forward to")
        await ws.prepare(request)
        runtime = self.kubelet.runtime

        def connect(port: int) -> Any:
            return runtime.port_forward(sandbox, port)

        try:
            if not tunnel:
                await forward_channels(ws, ports, connect, f"{ns}/{pod}", worker.uid)  # type: ignore[arg-type]
                return ws
            forwarder = PortForwarder(connect, f"{ns}/{pod}", worker.uid)
            session = spdy.Session(ws.send_bytes, forwarder.on_stream)
            try:
                await _feed_spdy(ws, session)
            finally:
                session.close()
                await forwarder.close()
        except ConnectionResetError as exc:
            log.debug("port-forward to %s/%s ended: %s", ns, pod, exc)
        finally:
            await ws.close()
        return ws

    @staticmethod
    async def _send(ws: web.WebSocketResponse, channel: int, data: bytes) -> None:
        await ws.send_bytes(bytes([channel]) + data)


async def _feed_spdy(ws: web.WebSocketResponse, session: spdy.Session) -> None:
    """Hand the WebSocket's binary messages to the SPDY session until either side ends."""
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await session.feed(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    except (spdy.SpdyError, ConnectionResetError) as exc:
        log.info("SPDY session ended: %s", exc)
    finally:
        session.close()


class StreamSession:
    """Pumps one exec between its WebSocket and the runtime's ExecSession."""

    def __init__(self, ws: web.WebSocketResponse, session: Any, command: list[str], v5: bool) -> None:
        self.ws = ws
        self.session = session
        self.command = command
        self.v5 = v5

    async def _input(self) -> None:
        async for msg in self.ws:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN:
                if data:
                    await self.session.write_stdin(data)
            elif channel == RESIZE:
                try:
                    size = json.loads(data)
                    await self.session.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
                except (ValueError, TypeError, AttributeError):
                    log.debug("bad resize message %r", data)
            elif channel == CLOSE and self.v5 and data[:1] == bytes([STDIN]):
                await self.session.close_stdin()

    async def _output(self) -> None:
        async for stream, data in self.session.output():
            await self.ws.send_bytes(bytes([STDOUT if stream == 1 else STDERR]) + data)

    async def run(self) -> None:
        reader = asyncio.create_task(self._input())
        writer = asyncio.create_task(self._output())
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if writer in done:
                writer.result()
                status = await remotecommand.final_status(self.session, self.command)
                await self.ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
        except (ConnectionResetError, RuntimeError) as exc:
            log.debug("exec stream ended: %s", exc)
        finally:
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                try:
                    await task
                except (asyncio.CancelledError, ConnectionResetError, RuntimeError):
                    pass
            await self.session.end()  # a client gone: an exec's command must not outlive it
            await self.ws.close()
