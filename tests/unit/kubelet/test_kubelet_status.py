from tinykube.kubelet.runtime.interface import ContainerState, ContainerStatus
from tinykube.kubelet.status import (
    ContainerRecord, api_container_status, merge_conditions, pod_conditions, pod_phase,
)


def pod(restart_policy="Always", containers=("a",), init=(), gates=()):
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"restartPolicy": restart_policy, "containers": [{"name": n, "image": "i"} for n in containers],
                     "initContainers": [{"name": n, "image": "i"} for n in init],
                     "readinessGates": [{"conditionType": g} for g in gates]}}


def cs(state, exit_code=0, cid="c1"):
    return ContainerStatus(cid, "a", 0, state, exit_code=exit_code, started_at=1, finished_at=2,
                           reason="Completed" if exit_code == 0 else "Error")


def status_of(rec, default="ContainerCreating"):
    return api_container_status({"name": rec.name, "image": "i"}, rec, "tinykube-process", default)


def test_waiting_running_terminated_states():
    assert status_of(ContainerRecord("a"))["state"] == {"waiting": {"reason": "ContainerCreating"}}
    running = status_of(ContainerRecord("a", current=cs(ContainerState.CONTAINER_RUNNING), ready=True, started=True))
    assert "running" in running["state"] and running["ready"] and running["containerID"] == "tinykube-process://c1"
    done = status_of(ContainerRecord("a", current=cs(ContainerState.CONTAINER_EXITED, 3)))
    term = done["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error" and not done["ready"]


def test_crashloop_shows_waiting_with_last_state():
    rec = ContainerRecord("a", current=None, last_terminated=cs(ContainerState.CONTAINER_EXITED, 1),
                          restart_count=2, waiting_reason="CrashLoopBackOff",
                          waiting_message="back-off 20s restarting failed container=a pod=p_ns(u)")
    st = status_of(rec)
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert st["lastState"]["terminated"]["exitCode"] == 1
    assert st["restartCount"] == 2
    # a waiting container that ran before counts as stopped: the pod stays Running
    assert pod_phase(pod(), [], [st]) == "Running"


def test_crashloop_last_state_is_the_exit_it_backs_off_after():
    """In back-off the pod worker still holds the container that just exited: that exit is
    the last state (kubectl's "RESTARTS 2 (5s ago)" counts from its finishedAt), not the one
    before it."""
    earlier = ContainerStatus("c2", "a", 1, ContainerState.CONTAINER_EXITED, exit_code=1,
                              started_at=100, finished_at=101, reason="Error")
    latest = ContainerStatus("c3", "a", 2, ContainerState.CONTAINER_EXITED, exit_code=2,
                             started_at=110, finished_at=111, reason="Error")
    rec = ContainerRecord("a", current=latest, last_terminated=earlier, restart_count=2,
                          waiting_reason="CrashLoopBackOff")
    st = status_of(rec)
    assert st["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    last = st["lastState"]["terminated"]
    assert (last["exitCode"], last["finishedAt"]) == (2, "1970-01-01T00:01:51Z")
    assert last["containerID"] == st["containerID"] == "tinykube-process://c3"


def test_phase_rules_per_restart_policy():
    ok = status_of(ContainerRecord("a", current=cs(ContainerState.CONTAINER_EXITED, 0)))
    bad = status_of(ContainerRecord("a", current=cs(ContainerState.CONTAINER_EXITED, 1)))
    waiting = status_of(ContainerRecord("a"))
    assert pod_phase(pod("Never"), [], [ok]) == "Succeeded"
    assert pod_phase(pod("Never"), [], [bad]) == "Failed"
    assert pod_phase(pod("OnFailure"), [], [bad]) == "Running"
    assert pod_phase(pod("OnFailure"), [], [ok]) == "Succeeded"
    assert pod_phase(pod("Always"), [], [ok]) == "Running"
    assert pod_phase(pod(), [], [waiting]) == "Pending"


def test_init_containers_gate_phase_and_conditions():
    p = pod(init=("setup",))
    init_waiting = [status_of(ContainerRecord("setup"), "PodInitializing")]
    main = [status_of(ContainerRecord("a"), "PodInitializing")]
    assert pod_phase(p, init_waiting, main) == "Pending"
    conds = {c["type"]: c for c in pod_conditions(p, "Pending", init_waiting, main, True)}
    assert conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["reason"] == "ContainersNotInitialized"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [setup]"
    failed = [status_of(ContainerRecord("setup", current=cs(ContainerState.CONTAINER_EXITED, 1)))]
    assert pod_phase(pod("Never", init=("setup",)), failed, main) == "Failed"


def test_ready_conditions_and_messages():
    p = pod(containers=("a", "b"))
    a = status_of(ContainerRecord("a", current=cs(ContainerState.CONTAINER_RUNNING), ready=True, started=True))
    b = {**status_of(ContainerRecord("b", current=cs(ContainerState.CONTAINER_RUNNING, cid="c2"))), "name": "b"}
    conds = {c["type"]: c for c in pod_conditions(p, "Running", [], [a, b], True)}
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "ContainersNotReady"
    assert conds["Ready"]["message"] == "containers with unready status: [b]"
    assert conds["PodReadyToStartContainers"]["status"] == "True"
    done = {c["type"]: c for c in pod_conditions(p, "Succeeded", [], [a, b], True)}
    assert done["Ready"]["reason"] == "PodCompleted"


def test_readiness_gate_blocks_ready():
    p = pod(gates=("example.com/lb",))
    a = status_of(ContainerRecord("a", current=cs(ContainerState.CONTAINER_RUNNING), ready=True, started=True))
    conds = {c["type"]: c for c in pod_conditions(p, "Running", [], [a], True)}
    assert conds["ContainersReady"]["status"] == "True"
    assert conds["Ready"]["status"] == "False"
    assert conds["Ready"]["reason"] == "ReadinessGatesNotReady"


def test_merge_conditions_keeps_transition_time_and_foreign_conditions():
    old = {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": "T0"},
                          {"type": "example.com/lb", "status": "True", "lastTransitionTime": "T1"}]}
    merged = merge_conditions(old, [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}], "T2")
    by_type = {c["type"]: c for c in merged}
    assert by_type["Ready"]["lastTransitionTime"] == "T0"
    assert by_type["example.com/lb"]["status"] == "True"
    merged = merge_conditions(old, [{"type": "Ready", "status": "True"}], "T3")
    ready = next(c for c in merged if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "T3" and "reason" not in ready
