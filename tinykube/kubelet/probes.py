"""Liveness, readiness and startup probes (upstream's ``pkg/kubelet/prober``).

:func:`run_probe` performs one check (exec, httpGet, tcpSocket) and says success or
failure with upstream's messages. A :class:`ProbeWorker` runs one probe of one container
on its period and turns raw outcomes into a result with ``failureThreshold`` and
``successThreshold``; :class:`PodProbes` owns the workers of one pod and tells the pod
worker when a result changes. Results start as upstream's: readiness Failure, liveness
Success, startup Unknown; liveness and readiness wait until the startup probe succeeded.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from tinykube import aio
from tinykube.kubelet.runtime.interface import CRIError, ExecResult

log = logging.getLogger(__name__)

Obj = dict
ExecFn = Callable[[list[str], float], Awaitable[ExecResult]]


class Result(enum.Enum):
    SUCCESS = "successful"
    FAILURE = "failed"
    UNKNOWN = "unknown"


KINDS = ("startup", "liveness", "readiness")
FIELD = {"startup": "startupProbe", "liveness": "livenessProbe", "readiness": "readinessProbe"}
TITLE = {"startup": "Startup", "liveness": "Liveness", "readiness": "Readiness"}
INITIAL = {"startup": Result.UNKNOWN, "liveness": Result.SUCCESS, "readiness": Result.FAILURE}


@dataclass
class ProbeTiming:
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_probe(cls, probe: Obj) -> "ProbeTiming":
        return cls(float(probe.get("initialDelaySeconds", 0)), float(probe.get("periodSeconds", 10) or 10),
                   float(probe.get("timeoutSeconds", 1) or 1), int(probe.get("successThreshold", 1) or 1),
                   int(probe.get("failureThreshold", 3) or 3))


def resolve_port(port: int | str, container: Obj) -> int:
    """A port number, or the number of the container port with that name."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port: {port} in {container.get('name', '')}")


async def http_probe(action: Obj, container: Obj, pod_ip: str, timeout: float) -> tuple[Result, str]:
    scheme = (action.get("scheme") or "HTTP").lower()
    host = action.get("host") or pod_ip or "127.0.0.1"
    port = resolve_port(action.get("port", 80), container)
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port}{path}"
    headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
    for h in action.get("httpHeaders") or []:
        headers[h.get("name", "")] = h.get("value", "")
    import aiohttp  # here: a kubelet starts its static pods before it loads an HTTP client

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, headers=headers, ssl=False, allow_redirects=True) as resp:
                body = (await resp.content.read(10 * 1024)).decode(errors="replace")
                if 200 <= resp.status < 400:
                    return Result.SUCCESS, body
                return Result.FAILURE, f"HTTP probe failed with statuscode: {resp.status}"
    except asyncio.TimeoutError:
        return Result.FAILURE, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except aiohttp.ClientConnectorError as exc:
        reason = "connect: connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else str(exc.os_error)
        return Result.FAILURE, f'Get "{url}": dial tcp {host}:{port}: {reason}'
    except aiohttp.ClientError as exc:
        return Result.FAILURE, f'Get "{url}": {exc}'


async def tcp_probe(action: Obj, container: Obj, pod_ip: str, timeout: float) -> tuple[Result, str]:
    host = action.get("host") or pod_ip or "127.0.0.1"
    port = resolve_port(action.get("port", 0), container)
    try:
        _, writer = await aio.wait_for(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        return Result.FAILURE, f"dial tcp {host}:{port}: i/o timeout"
    except ConnectionRefusedError:
        return Result.FAILURE, f"dial tcp {host}:{port}: connect: connection refused"
    except OSError as exc:
        return Result.FAILURE, f"dial tcp {host}:{port}: {exc.strerror or exc}"
    writer.close()
    return Result.SUCCESS, ""


async def exec_probe(action: Obj, exec_fn: ExecFn, timeout: float) -> tuple[Result, str]:
    cmd = list(action.get("command") or [])
    try:
        res = await exec_fn(cmd, timeout)
    except CRIError as exc:
        if exc.reason == "DeadlineExceeded":
            return Result.FAILURE, f"command {cmd!r} timed out"
        return Result.UNKNOWN, exc.message
    output = (res.stdout + res.stderr).decode(errors="replace")
    if res.exit_code == 0:
        return Result.SUCCESS, output
    return Result.FAILURE, output.rstrip("\n") or f"command {cmd!r} exited with {res.exit_code}"


async def run_probe(probe: Obj, container: Obj, pod_ip: str, exec_fn: ExecFn) -> tuple[Result, str]:
    """One check of one probe; the message is what the Unhealthy event carries."""
    timeout = float(probe.get("timeoutSeconds", 1) or 1)
    try:
        if "exec" in probe:
            return await exec_probe(probe["exec"], exec_fn, timeout)
        if "httpGet" in probe:
            return await http_probe(probe["httpGet"], container, pod_ip, timeout)
        if "tcpSocket" in probe:
            return await tcp_probe(probe["tcpSocket"], container, pod_ip, timeout)
    except ValueError as exc:
        return Result.UNKNOWN, str(exc)
    return Result.UNKNOWN, "missing probe handler"


@dataclass
class Thresholds:
    """Consecutive outcomes -> a probe result, as ``worker.doProbe`` counts them."""

    timing: ProbeTiming
    result: Result
    run: int = 0
    last_raw: Result | None = None

    def observe(self, raw: Result) -> bool:
        """Count one outcome; returns whether the result changed."""
        if raw == Result.UNKNOWN:
            return False
        self.run = self.run + 1 if raw == self.last_raw else 1
        self.last_raw = raw
        need = self.timing.success_threshold if raw == Result.SUCCESS else self.timing.failure_threshold
        if self.run >= need and raw != self.result:
            self.result = raw
            return True
        return False


OnResult = Callable[[str, str, Result], None]
OnFailure = Callable[[str, str, str], None]
Record = Callable[[str, str, Result], None]


@dataclass
class ProbeWorker:
    kind: str
    container: Obj
    container_id: str
    probe: Obj
    pod_ip: str
    exec_fn: ExecFn
    on_result: OnResult
    on_failure: OnFailure
    record: Record
    gate: asyncio.Event | None = None
    task: asyncio.Task | None = None
    state: Thresholds = field(init=False)

    def __post_init__(self) -> None:
        self.timing = ProbeTiming.from_probe(self.probe)
        self.state = Thresholds(self.timing, INITIAL[self.kind])

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"probe-{self.kind}-{self.container['name']}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None

    async def _run(self) -> None:
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.timing.initial_delay)
        while True:
            tick = time.monotonic()
            raw, message = await run_probe(self.probe, self.container, self.pod_ip, self.exec_fn)
            self.record(self.kind, self.container["name"], raw)
            if raw == Result.FAILURE:
                self.on_failure(self.kind, self.container["name"], message)
            if self.state.observe(raw):
                self.on_result(self.kind, self.container["name"], self.state.result)
                if self.kind == "startup" and self.state.result == Result.SUCCESS:
                    return  # a startup probe stops once it succeeded
            await asyncio.sleep(max(0.0, self.timing.period - (time.monotonic() - tick)))


class PodProbes:
    """All probe workers of one pod, keyed by container name."""

    def __init__(self, on_change: Callable[[], None], on_failure: OnFailure, record: Record) -> None:
        self.on_change = on_change
        self.on_failure = on_failure
        self.record = record
        self.workers: dict[str, list[ProbeWorker]] = {}
        self.results: dict[tuple[str, str], Result] = {}
        self.gates: dict[str, asyncio.Event] = {}

    def result(self, kind: str, name: str) -> Result:
        return self.results.get((kind, name), INITIAL[kind])

    def has(self, kind: str, container: Obj) -> bool:
        return bool(container.get(FIELD[kind]))

    def ready(self, container: Obj) -> bool:
        if not self.started(container):
            return False
        if not self.has("readiness", container):
            return True
        return self.result("readiness", container["name"]) == Result.SUCCESS

    def started(self, container: Obj) -> bool:
        if not self.has("startup", container):
            return True
        return self.result("startup", container["name"]) == Result.SUCCESS

    def liveness_failed(self, container: Obj) -> str:
        """'liveness' or 'startup' when that probe says the container must be restarted."""
        name = container["name"]
        if self.has("startup", container) and self.result("startup", name) == Result.FAILURE:
            return "startup"
        if self.has("liveness", container) and self.result("liveness", name) == Result.FAILURE:
            return "liveness"
        return ""

    def _changed(self, kind: str, name: str, result: Result) -> None:
        self.results[(kind, name)] = result
        if kind == "startup" and result == Result.SUCCESS and name in self.gates:
            self.gates[name].set()
        self.on_change()

    async def start(self, container: Obj, container_id: str, pod_ip: str, exec_fn: ExecFn) -> None:
        """(Re)start the probes of a freshly started container; results reset to initial."""
        name = container["name"]
        await self.stop(name)
        for kind in KINDS:
            self.results.pop((kind, name), None)
        gate = None
        if self.has("startup", container):
            gate = self.gates[name] = asyncio.Event()
        workers = []
        for kind in KINDS:
            if not self.has(kind, container):
                continue
            w = ProbeWorker(kind, container, container_id, container[FIELD[kind]], pod_ip, exec_fn,
                            self._changed, self.on_failure, self.record, gate if kind != "startup" else None)
            w.start()
            workers.append(w)
        self.workers[name] = workers

    async def stop(self, name: str) -> None:
        for w in self.workers.pop(name, []):
            await w.stop()

    async def stop_all(self) -> None:
        for name in list(self.workers):
            await self.stop(name)
