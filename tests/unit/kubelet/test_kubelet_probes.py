import asyncio
import socket

from tinykube.kubelet.probes import PodProbes, ProbeTiming, Result, Thresholds, resolve_port, run_probe
from tinykube.kubelet.runtime.interface import CRIError, ExecResult


def test_thresholds_count_consecutive_outcomes():
    t = Thresholds(ProbeTiming(failure_threshold=3, success_threshold=2), Result.SUCCESS)
    assert not t.observe(Result.FAILURE)
    assert not t.observe(Result.FAILURE)
    assert not t.observe(Result.SUCCESS)  # the run of failures is broken
    assert not t.observe(Result.FAILURE)
    assert not t.observe(Result.FAILURE)
    assert t.observe(Result.FAILURE) and t.result == Result.FAILURE
    assert not t.observe(Result.SUCCESS)
    assert t.observe(Result.SUCCESS) and t.result == Result.SUCCESS
    assert not t.observe(Result.UNKNOWN)


def test_timing_defaults_are_upstreams():
    t = ProbeTiming.from_probe({})
    assert (t.initial_delay, t.period, t.timeout, t.success_threshold, t.failure_threshold) == (0, 10, 1, 1, 3)


def test_named_ports():
    c = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port("http", c) == 8080
    assert resolve_port(81, c) == 81
    assert resolve_port("82", c) == 82


async def test_exec_probe_success_failure_and_timeout():
    async def ok(cmd, timeout):
        return ExecResult(b"fine\n", b"", 0)

    async def fail(cmd, timeout):
        return ExecResult(b"", b"cat: /tmp/healthy: No such file or directory\n", 1)

    async def slow(cmd, timeout):
        raise CRIError("DeadlineExceeded", "timed out")

    probe = {"exec": {"command": ["cat", "/tmp/healthy"]}}
    assert (await run_probe(probe, {}, "", ok))[0] == Result.SUCCESS
    assert await run_probe(probe, {}, "", fail) == (Result.FAILURE, "cat: /tmp/healthy: No such file or directory")
    result, message = await run_probe(probe, {}, "", slow)
    assert result == Result.FAILURE and "timed out" in message


async def test_tcp_and_http_probe_refused_messages():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result, message = await run_probe({"tcpSocket": {"port": port}}, {}, "127.0.0.1", None)
    assert result == Result.FAILURE and message == f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    result, message = await run_probe({"httpGet": {"path": "/healthz", "port": port}}, {}, "127.0.0.1", None)
    assert result == Result.FAILURE
    assert message == f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: connection refused'


async def test_pod_probes_readiness_starts_false_and_liveness_restart_signal():
    changed = asyncio.Event()
    failures = []
    probes = PodProbes(changed.set, lambda kind, name, msg: failures.append((kind, msg)), lambda *a: None)
    outcomes = {"ready": Result.SUCCESS}

    async def exec_fn(cmd, timeout):
        return ExecResult(b"", b"no", 0 if outcomes[cmd[0]] == Result.SUCCESS else 1)

    container = {"name": "c",
                 "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 1},
                 "livenessProbe": {"exec": {"command": ["live"]}, "periodSeconds": 1, "failureThreshold": 1}}
    outcomes["live"] = Result.FAILURE
    assert not probes.ready(container)
    assert probes.liveness_failed(container) == ""
    await probes.start(container, "cid", "", exec_fn)
    try:
        async def until(cond):
            while not cond():
                changed.clear()
                await changed.wait()
        await asyncio.wait_for(until(lambda: probes.ready(container) and probes.liveness_failed(container)), 5)
        assert probes.liveness_failed(container) == "liveness"
        assert ("liveness", "no") in failures
    finally:
        await probes.stop_all()
