"""CgroupManager writes the right files on both hierarchies (checked against a fake mount)."""

from tinykube.kubelet.runtime.cgroups import CgroupManager, detect_version
from tinykube.kubelet.runtime.interface import LinuxResources


def read(path):
    with open(path) as f:
        return f.read()


def test_cgroup_v2_layout_and_limits(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    assert detect_version(str(tmp_path)) == 2
    cg = CgroupManager("tinykube/node-1", mount=str(tmp_path))
    paths = cg.create("podabc/c1", LinuxResources(cpu_quota=50000, cpu_period=100000,
                                                  memory_limit_in_bytes=64 << 20, pids_limit=100))
    base = tmp_path / "tinykube/node-1/podabc/c1"
    assert paths == [str(base)]
    assert read(base / "cpu.max") == "50000 100000"
    assert read(base / "memory.max") == str(64 << 20)
    assert read(base / "pids.max") == "100"
    assert read(tmp_path / "cgroup.subtree_control") == "+cpu +memory +pids"
    (base / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cg.oom_killed("podabc/c1")
    (base / "cgroup.procs").write_text("")
    assert cg.procs_recursive("podabc") == []


def test_cgroup_v1_layout_and_limits(tmp_path):
    for controller in ("cpu", "memory", "pids"):
        (tmp_path / controller).mkdir()
    assert detect_version(str(tmp_path)) == 1
    cg = CgroupManager("tinykube/node-1", mount=str(tmp_path))
    paths = cg.create("podabc", LinuxResources(cpu_quota=25000, cpu_period=100000, cpu_shares=256,
                                               memory_limit_in_bytes=1 << 30, pids_limit=4096))
    assert paths == [str(tmp_path / c / "tinykube/node-1/podabc") for c in ("cpu", "memory", "pids")]
    assert read(tmp_path / "cpu/tinykube/node-1/podabc/cpu.cfs_quota_us") == "25000"
    assert read(tmp_path / "cpu/tinykube/node-1/podabc/cpu.shares") == "256"
    assert read(tmp_path / "memory/tinykube/node-1/podabc/memory.limit_in_bytes") == str(1 << 30)
    assert read(tmp_path / "pids/tinykube/node-1/podabc/pids.max") == "4096"
    oom = tmp_path / "memory/tinykube/node-1/podabc/memory.oom_control"
    oom.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n")
    assert not cg.oom_killed("podabc")
    (tmp_path / "pids/tinykube/node-1/podabc/cgroup.procs").write_text("4242\n")
    assert cg.procs_recursive("podabc") == [4242]


def test_cpu_shares_and_weights_as_upstream():
    from tinykube.kubelet.runtime.cgroups import milli_cpu_to_shares, shares_to_weight

    assert milli_cpu_to_shares(0) == 2  # BestEffort
    assert milli_cpu_to_shares(1) == 2
    assert milli_cpu_to_shares(250) == 256
    assert milli_cpu_to_shares(2000) == 2048
    assert milli_cpu_to_shares(10**9) == 262144
    assert [shares_to_weight(s) for s in (2, 1024, 2048, 262144)] == [1, 39, 79, 10000]


def test_node_cgroup_weighs_allocatable_cpu(tmp_path):
    for controller in ("cpu", "memory", "pids"):
        (tmp_path / controller).mkdir()
    (tmp_path / "cpu/tinykube").mkdir()
    (tmp_path / "cpu/tinykube/cpu.shares").write_text("4096\n")  # another, bigger node's
    cg = CgroupManager("tinykube/node-1", mount=str(tmp_path))
    cg.set_node_cpu_shares(2048)
    assert read(tmp_path / "cpu/tinykube/node-1/cpu.shares") == "2048"
    assert read(tmp_path / "cpu/tinykube/cpu.shares") == "4096\n"  # shared level: never lowered
    (tmp_path / "cpu/tinykube/cpu.shares").write_text("1024\n")
    cg.set_node_cpu_shares(2048)
    assert read(tmp_path / "cpu/tinykube/cpu.shares") == "2048"
    cg.create("podabc", LinuxResources(cpu_shares=256))
    assert read(tmp_path / "cpu/tinykube/node-1/podabc/cpu.shares") == "256"


def test_v2_cpu_weight(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    cg = CgroupManager("tinykube/node-1", mount=str(tmp_path))
    cg.set_node_cpu_shares(2048)
    assert read(tmp_path / "tinykube/node-1/cpu.weight") == "79"
    assert read(tmp_path / "tinykube/cpu.weight") == "79"
    cg.create("podabc", LinuxResources(cpu_shares=2))
    assert read(tmp_path / "tinykube/node-1/podabc/cpu.weight") == "1"
