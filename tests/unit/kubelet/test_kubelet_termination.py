"""Termination messages: the file each attempt gets, what is read back, the log fallback."""

from __future__ import annotations

import os
import stat

from tinykube.kubelet import termination
from tinykube.kubelet.runtime.interface import ContainerState, ContainerStatus, Mount


def exited(attempt: int = 0, exit_code: int = 1, message: str = "", log_path: str = "") -> ContainerStatus:
    return ContainerStatus("cid", "c", attempt, ContainerState.CONTAINER_EXITED, exit_code=exit_code,
                           message=message, log_path=log_path)


def spec(**fields) -> dict:
    return {"name": "c", "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            **fields}


def test_each_attempt_gets_an_empty_file_anyone_may_write(tmp_path):
    mount = termination.prepare(spec(), str(tmp_path), 3)
    assert mount == Mount("/dev/termination-log", termination.message_file(str(tmp_path), "c", 3))
    assert stat.S_IMODE(os.stat(mount.host_path).st_mode) == 0o666 and os.path.getsize(mount.host_path) == 0
    assert termination.prepare(spec(terminationMessagePath=""), str(tmp_path), 0) is None
    shadowed = spec(volumeMounts=[{"name": "v", "mountPath": "/dev/termination-log"}])
    assert termination.prepare(shadowed, str(tmp_path), 0) is None


async def test_the_last_4_kib_written_follow_the_runtimes_message(tmp_path):
    mount = termination.prepare(spec(), str(tmp_path), 0)
    with open(mount.host_path, "w") as f:
        f.write("x" * 5000 + "end")
    status = await termination.with_message(exited(message="OOM"), spec(), str(tmp_path))
    assert status.message == "OOM: " + ("x" * 5000 + "end")[-4096:]
    assert (await termination.with_message(exited(attempt=1), spec(), str(tmp_path))).message == ""


def cri_log(path, lines: list[bytes]) -> str:
    with open(path, "wb") as f:
        for line in lines:
            f.write(b"2026-12-02T10:00:00.000000000Z stdout " + line + b"\n")
    return str(path)


async def test_fallback_takes_the_logs_last_80_lines_only_on_failure(tmp_path):
    log = cri_log(tmp_path / "0.log", [b"F line-%d" % i for i in range(100)] + [b"P part-", b"F whole"])
    policy = spec(terminationMessagePolicy="FallbackToLogsOnError")
    status = await termination.with_message(exited(log_path=log), policy, str(tmp_path))
    assert status.message == "".join(f"line-{i}\n" for i in range(21, 100)) + "part-whole\n"
    assert (await termination.with_message(exited(exit_code=0, log_path=log), policy, str(tmp_path))).message == ""
    written = termination.prepare(policy, str(tmp_path), 0)
    with open(written.host_path, "w") as f:
        f.write("its own words")
    assert (await termination.with_message(exited(log_path=log), policy, str(tmp_path))).message == "its own words"


def test_the_log_tail_is_at_most_2_kib_of_the_end(tmp_path):
    log = cri_log(tmp_path / "0.log", [b"F " + b"%03d" % i * 40 for i in range(60)])
    tail = termination.log_tail(log)
    assert len(tail) == 2048 and tail.endswith("059" * 40 + "\n")
