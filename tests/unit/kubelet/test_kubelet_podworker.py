"""The pod worker's state machine against the fake runtime and an in-memory host."""

from __future__ import annotations

import asyncio

from tinykube.kubelet.backoff import Backoff
from tinykube.kubelet.config import KubeletConfig
from tinykube.kubelet.env import EnvSources
from tinykube.kubelet.kubelet import Kubelet
from tinykube.kubelet.podworker import PodWorker, container_resources
from tinykube.kubelet.runtime.fake import FakeRuntime
from tinykube.kubelet.runtime.interface import PodSandboxConfig


class Host:
    """A WorkerHost with no API server: it records statuses and events."""

    def __init__(self, tmp_path) -> None:
        self.runtime = FakeRuntime(str(tmp_path / "rt"))
        self.images = self.runtime
        self.backoff = Backoff(base=10, cap=300)
        self.node_name, self.host_ip, self.runtime_prefix = "node-1", "127.0.0.1", "tinykube-fake"
        self.root_dir = str(tmp_path)
        self.statuses: list[dict] = []
        self.events: list[tuple[str, str, str]] = []
        self.deleted: list[str] = []
        self.shared = ""  # why pods share the host network

    def record_event(self, obj, type_, reason, message):
        self.events.append((type_, reason, message))

    async def fetch(self, resource, namespace, name):
        return None

    async def request_token(self, namespace, sa, audience, seconds):
        return "token"

    async def env_sources(self, pod):
        return EnvSources()

    def sandbox_config(self, pod):
        return PodSandboxConfig(name=pod["metadata"]["name"], namespace="default", uid=pod["metadata"]["uid"],
                                log_directory=self.root_dir + "/logs")

    async def push_status(self, pod, status):
        self.statuses.append(status)

    async def confirm_deletion(self, pod):
        self.deleted.append(pod["metadata"]["name"])

    def admit(self, pod):
        return None

    def observe_pod_started(self, pod, seconds): ...

    def observe_probe(self, pod, kind, container, result): ...

    def observe_sync(self, operation, seconds): ...

    def can_isolate(self):
        return False

    def shared_network(self):
        return self.shared


def make_pod(policy="Always"):
    return {"metadata": {"name": "p", "namespace": "default", "uid": "uid-1"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "x", "command": ["x"]}]}}


def state(status):
    return status["containerStatuses"][0]["state"]


async def test_crash_loop_back_off_sequence(tmp_path):
    host = Host(tmp_path)
    worker = PodWorker(host, make_pod())
    await worker.sync()
    assert host.statuses[-1]["phase"] == "Running"
    cid = worker.records["c"].current.id
    host.runtime.inject_exit(cid, 1)
    await worker.sync()  # first crash: restarted at once
    rec = worker.records["c"]
    assert rec.restart_count == 1 and "running" in state(host.statuses[-1])
    host.runtime.inject_exit(rec.current.id, 1)
    delay = await worker.sync()  # second crash: 10 s back-off
    status = host.statuses[-1]
    waiting = state(status)["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff"
    assert waiting["message"] == "back-off 10s restarting failed container=c pod=p_default(uid-1)"
    assert status["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    assert 9 < delay <= 10.1
    assert ("Warning", "BackOff", "Back-off restarting failed container c in pod p_default(uid-1)") in host.events
    # once the back-off passed the container restarts and the next wait doubles
    entry = host.backoff.entries["uid-1/c"]
    rec.current.finished_at -= 11
    await worker.sync()
    assert rec.restart_count == 2 and "running" in state(host.statuses[-1])
    assert entry.backoff == 20


async def test_a_pod_on_the_host_network_against_its_spec_is_told_why(tmp_path):
    host = Host(tmp_path)
    host.shared = "iptables is not installed"
    await PodWorker(host, make_pod()).sync()
    assert ("Warning", "HostNetwork",
            "iptables is not installed: the pod shares the host's network namespace and IP") in host.events
    host.events.clear()
    pod = make_pod()
    pod["spec"]["hostNetwork"] = True
    await PodWorker(host, pod).sync()  # asked for it: nothing to tell
    assert not [e for e in host.events if e[1] == "HostNetwork"]


async def test_restart_policy_never_ends_in_failed_and_stops(tmp_path):
    host = Host(tmp_path)
    worker = PodWorker(host, make_pod("Never"))
    await worker.sync()
    host.runtime.inject_exit(worker.records["c"].current.id, 2)
    await worker.sync()
    assert host.statuses[-1]["phase"] == "Failed"
    assert worker.phase == "Failed"
    await worker.sync()  # terminal: the sandbox is stopped, nothing restarts
    assert worker.records["c"].restart_count == 0


async def test_termination_confirms_deletion(tmp_path):
    host = Host(tmp_path)
    pod = make_pod()
    worker = PodWorker(host, pod)
    worker.start()
    while not host.statuses or host.statuses[-1]["phase"] != "Running":
        await asyncio.sleep(0.01)
    worker.update({**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z",
                                       "deletionGracePeriodSeconds": 1}})
    await asyncio.wait_for(worker.finished.wait(), 5)
    assert host.deleted == ["p"]
    assert ("Normal", "Killing", "Stopping container c") in host.events
    assert host.runtime.sandboxes == {}


def test_container_resources_from_limits():
    res = container_resources({"resources": {"limits": {"cpu": "250m", "memory": "64Mi"}}})
    assert res.cpu_quota == 25000 and res.cpu_period == 100000
    assert res.memory_limit_in_bytes == 64 * 1024 * 1024
    assert res.cpu_shares == 256


def test_dns_policies(tmp_path):
    k = Kubelet(KubeletConfig(node_name="n", runtime="fake", root_dir=str(tmp_path), cluster_dns=["10.96.0.10"]))
    pod = {"metadata": {"name": "p", "namespace": "shop", "uid": "u"}, "spec": {"containers": []}}
    assert k.dns_config(pod) == (["10.96.0.10"], ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"],
                                 ["ndots:5"])
    host_net = {**pod, "spec": {"hostNetwork": True, "containers": []}}
    assert k.dns_config(host_net)[0] != ["10.96.0.10"] or not k.dns_config(host_net)[1]
    with_host_net = {**pod, "spec": {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet", "containers": []}}
    assert k.dns_config(with_host_net)[0] == ["10.96.0.10"]
    custom = {**pod, "spec": {"dnsPolicy": "None", "containers": [], "dnsConfig": {
        "nameservers": ["1.2.3.4"], "searches": ["example.com"], "options": [{"name": "ndots", "value": "2"}]}}}
    assert k.dns_config(custom) == (["1.2.3.4"], ["example.com"], ["ndots:2"])


async def test_changed_container_definition_restarts_it(tmp_path):
    host = Host(tmp_path)
    pod = make_pod()
    worker = PodWorker(host, pod)
    await worker.sync()
    first = worker.records["c"].current.id
    changed = {**pod, "spec": {**pod["spec"], "containers": [{"name": "c", "image": "y", "command": ["x"]}]}}
    worker.update(changed)
    await worker.sync()
    rec = worker.records["c"]
    assert rec.current.id != first and rec.restart_count == 1
    assert ("Normal", "Killing", "Container c definition changed, will be restarted") in host.events
    assert host.statuses[-1]["containerStatuses"][0]["image"] == "y"


async def test_startup_probe_gates_readiness(tmp_path):
    from tinykube.kubelet.probes import PodProbes, Result

    probes = PodProbes(lambda: None, lambda *a: None, lambda *a: None)
    c = {"name": "c", "startupProbe": {"exec": {"command": ["x"]}}, "readinessProbe": {"exec": {"command": ["y"]}}}
    assert not probes.started(c) and not probes.ready(c)
    probes._changed("startup", "c", Result.SUCCESS)
    assert probes.started(c) and not probes.ready(c)
    probes._changed("readiness", "c", Result.SUCCESS)
    assert probes.ready(c)
    probes._changed("startup", "c", Result.FAILURE)
    assert probes.liveness_failed(c) == "startup"


async def test_init_containers_in_order_and_sidecars_keep_running(tmp_path):
    host = Host(tmp_path)
    pod = make_pod()
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "x", "command": ["x"]},
                                     {"name": "proxy", "image": "x", "command": ["x"], "restartPolicy": "Always"}]
    worker = PodWorker(host, pod)
    await worker.sync()
    assert set(worker.records) == {"setup"}  # nothing else starts before the first init container ends
    status = host.statuses[-1]
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    host.runtime.inject_exit(worker.records["setup"].current.id, 0)
    await worker.sync()
    assert "running" in worker.records["proxy"].current.state.name.lower()
    assert "running" in worker.records["c"].current.state.name.lower()
    status = host.statuses[-1]
    assert status["phase"] == "Running"
    init = {s["name"]: s for s in status["initContainerStatuses"]}
    assert init["setup"]["state"]["terminated"]["reason"] == "Completed"
    assert "running" in init["proxy"]["state"]


async def test_an_ephemeral_container_runs_once_even_while_init_containers_do(tmp_path):
    """Added to a pod stuck in an init container, it starts at once; it is reported apart,
    never ready, and not restarted when it exits; the pod's phase is the other containers'."""
    host = Host(tmp_path)
    pod = make_pod()
    pod["spec"]["initContainers"] = [{"name": "setup", "image": "x", "command": ["x"]}]
    worker = PodWorker(host, pod)
    await worker.sync()
    debug = {**pod, "spec": {**pod["spec"], "ephemeralContainers": [{"name": "dbg", "image": "x", "command": ["sh"]}]}}
    worker.update(debug)
    assert worker.wake.is_set()
    await worker.sync()
    assert set(worker.records) == {"setup", "dbg"}
    ephemeral = host.statuses[-1]["ephemeralContainerStatuses"]
    assert [(s["name"], s["ready"], "running" in s["state"]) for s in ephemeral] == [("dbg", False, True)]
    assert host.statuses[-1]["phase"] == "Pending"
    host.runtime.inject_exit(worker.records["dbg"].current.id, 1)
    await worker.sync()
    ended = host.statuses[-1]["ephemeralContainerStatuses"][0]
    assert ended["state"]["terminated"]["exitCode"] == 1 and ended["restartCount"] == 0
    assert worker.records["dbg"].restart_count == 0


async def test_only_changes_the_sync_acts_on_wake_the_worker(tmp_path):
    """Its own status coming back through the watch does not start another sync."""
    host = Host(tmp_path)
    pod = make_pod()
    worker = PodWorker(host, pod)
    await worker.sync()
    worker.wake.clear()
    echoed = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "7"}, "status": host.statuses[-1]}
    worker.update(echoed)
    assert not worker.wake.is_set() and worker.pod is echoed  # kept for the next sync
    for changed in ({**echoed, "metadata": {**echoed["metadata"], "labels": {"a": "b"}}},
                    {**echoed, "metadata": {**echoed["metadata"], "annotations": {"a": "b"}}},
                    {**echoed, "metadata": {**echoed["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}},
                    {**echoed, "spec": {**echoed["spec"], "activeDeadlineSeconds": 5}}):
        worker.update(echoed)
        worker.update(changed)
        assert worker.wake.is_set(), changed
        worker.wake.clear()


async def test_a_readiness_gate_condition_from_another_writer_wakes_the_worker(tmp_path):
    host = Host(tmp_path)
    pod = make_pod()
    pod["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}]
    worker = PodWorker(host, pod)
    await worker.sync()
    assert host.statuses[-1]["conditions"][2:4] == [
        {"type": "ContainersReady", "status": "True", "lastProbeTime": None,
         "lastTransitionTime": host.statuses[-1]["conditions"][2]["lastTransitionTime"]},
        {**host.statuses[-1]["conditions"][3], "status": "False", "reason": "ReadinessGatesNotReady"}]
    worker.wake.clear()
    worker.update({**pod, "status": host.statuses[-1]})
    assert not worker.wake.is_set()
    gate = {"type": "example.com/lb", "status": "True"}
    worker.update({**pod, "status": {**host.statuses[-1], "conditions": host.statuses[-1]["conditions"] + [gate]}})
    assert worker.wake.is_set()
    await worker.sync()
    ready = next(c for c in host.statuses[-1]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
