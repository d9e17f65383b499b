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
