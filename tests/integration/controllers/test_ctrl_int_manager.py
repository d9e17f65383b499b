"""The controller manager process shape: leader election, health and metrics, the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from tinykube.api import meta
from tinykube.controllers.config import ControllerManagerConfig
from tinykube.controllers.manager import ControllerManager
from tinykube.controllers.testutil import load_example, wait_for_list, wait_for_object


def manager(client, identity: str, **kw) -> ControllerManager:
    return ControllerManager(ControllerManagerConfig(
        client=client, identity=identity, controllers=["replicaset"], leader_elect=True,
        leader_elect_lease_duration=3, leader_elect_renew_deadline=2,
        leader_elect_retry_period=0.5, secure_port=0, **kw))


async def wait_until(predicate, timeout: float) -> None:
    """Wait for an in-process condition, yielding to the loop between checks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_exactly_one_of_two_managers_leads_and_the_other_takes_over(api):
    leases = api.resource("leases", "coordination.k8s.io")
    a, b = manager(api, "cm-a"), manager(api, "cm-b")
    await a.start()
    await b.start()
    try:
        await wait_until(lambda: a.is_leader or b.is_leader, 10)
        leader, standby = (a, b) if a.is_leader else (b, a)
        await leader.wait_running(10)
        lease = await leases.get("kube-controller-manager", namespace="kube-system")
        assert lease["spec"]["holderIdentity"] == leader.identity
        assert not standby.is_leader and not standby.controllers

        rs = load_example("web-rs.yaml")
        await api.resource("replicasets", "apps").create(rs, namespace="default")
        pods = await wait_for_list(api.resource("pods"), lambda items: len(items) == 3,
                                   namespace="default")

        # Crash the leader: it does not release the Lease, so the standby must wait for it
        # to expire (lease duration 3 s).
        leader.elector.release_on_cancel = False
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await leader.stop()
        await standby.wait_running(10)
        assert loop.time() - killed_at < 3 + 2  # lease duration plus one retry with jitter
        lease = await wait_for_object(
            leases, "kube-controller-manager",
            lambda o: o is not None and o["spec"]["holderIdentity"] == standby.identity,
            namespace="kube-system")
        assert lease["spec"]["leaseTransitions"] >= 1

        await api.resource("pods").delete(meta.name(pods[0]), namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: len(items) == 3 and meta.name(
            pods[0]) not in {meta.name(p) for p in items}, namespace="default")
    finally:
        await a.stop()
        await b.stop()


async def test_health_and_workqueue_metrics_are_served(api):
    m = manager(api, "cm-metrics")
    await m.start()
    try:
        await m.wait_running(10)
        await api.resource("replicasets", "apps").create(
            load_example("web-rs.yaml"), namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: len(items) == 3,
                            namespace="default")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"https://127.0.0.1:{m.port}/healthz", ssl=False) as resp:
                assert resp.status == 200 and await resp.text() == "ok"
            async with session.get(f"https://127.0.0.1:{m.port}/metrics", ssl=False) as resp:
                body = await resp.text()
        assert 'workqueue_adds_total{name="replicaset-controller"}' in body
        assert 'workqueue_depth{name="replicaset-controller"}' in body
        assert 'workqueue_longest_running_processor_seconds{name="replicaset-controller"}' \
            in body
        assert 'workqueue_queue_duration_seconds_count{name="replicaset-controller"}' in body
        assert "# TYPE workqueue_work_duration_seconds histogram" in body
        assert 'leader_election_master_status{name="kube-controller-manager"} 1.0' in body
    finally:
        await m.stop()


async def test_cli_runs_until_sigterm(apiserver, api):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tinykube.cli.main", "controller-manager",
        "--kubeconfig", apiserver.kubeconfig, "--controllers", "replicaset,serviceaccount",
        "--leader-elect=false", "--secure-port", "0",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await api.resource("replicasets", "apps").create(
            load_example("web-rs.yaml"), namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: len(items) == 3,
                            namespace="default", timeout=20)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        stderr = await asyncio.wait_for(proc.stderr.read(), 20)
        rc = await asyncio.wait_for(proc.wait(), 20)
    assert rc == 0, stderr.decode()
    assert b"replicaset-controller" in stderr


def test_cli_rejects_unknown_controllers():
    from click.testing import CliRunner

    from tinykube.cli.controller_manager import controller_manager

    result = CliRunner().invoke(controller_manager, ["--controllers", "bogus"])
    assert result.exit_code == 2
    assert '"bogus" is not in the list of known controllers' in result.output
    assert os.environ.get("NO_SUCH") is None


@pytest.mark.slow  # two extra processes; the in-process crash test above is the fast one
async def test_killed_leader_process_is_replaced_within_the_lease_duration(apiserver, api):
    leases = api.resource("leases", "coordination.k8s.io")
    procs = []
    try:
        for _ in range(2):
            procs.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tinykube.cli.main", "controller-manager",
                "--kubeconfig", apiserver.kubeconfig, "--controllers", "replicaset",
                "--leader-elect=true", "--leader-elect-lease-duration", "3s",
                "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms",
                "--secure-port", "0",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE))
        identities = {}
        for proc in procs:  # each announces its identity once it runs
            line = ""
            while not line.startswith("kube-controller-manager "):
                line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
                assert line, "controller manager exited before announcing itself"
            identities[line.split()[1]] = proc
        lease = await wait_for_object(leases, "kube-controller-manager",
                                      lambda o: o is not None and o["spec"].get(
                                          "holderIdentity") in identities,
                                      namespace="kube-system", timeout=20)
        leader_id = lease["spec"]["holderIdentity"]
        standby_id = next(i for i in identities if i != leader_id)
        identities[leader_id].kill()  # SIGKILL: the Lease is not released
        await identities[leader_id].wait()
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await wait_for_object(leases, "kube-controller-manager",
                              lambda o: o["spec"].get("holderIdentity") == standby_id,
                              namespace="kube-system", timeout=15)
        assert loop.time() - killed_at < 3 + 2
        await api.resource("replicasets", "apps").create(
            load_example("web-rs.yaml"), namespace="default")
        await wait_for_list(api.resource("pods"), lambda items: len(items) == 3,
                            namespace="default", timeout=20)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), 20)
