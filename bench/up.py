"""Time to ready of ``tinykube up``: new clusters (and resumed ones), min / median / max.

    python3 bench/up.py                  # 10 new clusters, each in its own TINYKUBE_HOME
    python3 bench/up.py --runs 5 --resume   # also time resuming each one once
    python3 bench/up.py --timeline       # per process: start, CPU; per endpoint: first 200

Each run is ``tinykube up --free-ports --no-merge-kubeconfig`` in a fresh temporary
``TINYKUBE_HOME``, then ``tinykube down``. Two figures per run: the wall time of the ``up``
command until it exits (it exits when every component answers its health endpoint and the
node is Ready, as its progress view shows) and the time its summary reports. The load
average is printed before and after, since other work on the machine skews the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

UP = [sys.executable, "-m", "tinykube", "up", "--free-ports", "--no-merge-kubeconfig"]
DOWN = [sys.executable, "-m", "tinykube", "down"]


def _up(env: dict[str, str]) -> tuple[float, float]:
    start = time.monotonic()
    done = subprocess.run(UP, env=env, capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"tinykube up failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    match = re.search(r"is up\S* in ([0-9.]+)s", done.stderr + done.stdout)
    return wall, float(match.group(1)) if match else float("nan")


def _down(env: dict[str, str]) -> None:
    subprocess.run(DOWN, env=env, capture_output=True, timeout=60, check=True)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    """CLOCK_MONOTONIC-comparable boot time: /proc/<pid>/stat start times count from boot."""
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return time.monotonic() - uptime


def _processes(marker: str) -> dict[int, tuple[str, float, float]]:
    """PID -> (component, start time, CPU seconds) of every process whose command line
    mentions ``marker`` (the cluster's home directory)."""
    found = {}
    boot = _boot_time()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if not any(marker.encode() in arg for arg in argv):
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        name = next((w for w in words[1:] if not w.startswith("-") and w != "tinykube"
                     and "/" not in w), words[0])
        if "tinykube.cli.supervisor" in words:
            name = "supervisor"
        start = boot + int(fields[19]) / _CLK_TCK
        cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
        found[int(entry)] = (name, start, cpu)
    return found


def _get(url: str) -> tuple[int, bytes] | None:
    import http.client
    import ssl
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        context = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=0.5,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=0.5)
    try:
        conn.request("GET", parts.path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def timeline(home: str) -> None:
    """One ``up`` with a second process watching: when each process started, when each
    health endpoint first answered 200 and when the node was first Ready."""
    import json

    env = {**os.environ, "TINYKUBE_HOME": home}
    start = time.monotonic()
    up = subprocess.Popen(UP, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, tuple[str, float, float]] = {}
    ready: dict[str, float] = {}
    settings_file = os.path.join(home, "default", "cluster.json")
    endpoints: dict[str, str] = {}
    while up.poll() is None:
        for pid, info in _processes(home).items():
            seen[pid] = info if pid not in seen else (*seen[pid][:2], info[2])
        if not endpoints and os.path.exists(settings_file):
            try:
                ports = json.load(open(settings_file))["ports"]
            except ValueError:
                ports = None
            if ports:
                endpoints = {
                    "kube-apiserver /readyz": f"http://127.0.0.1:{ports['apiserver']}/readyz",
                    "kube-scheduler": f"https://127.0.0.1:{ports['scheduler']}/healthz",
                    "kube-controller-manager":
                        f"https://127.0.0.1:{ports['controller_manager']}/healthz",
                    "kubelet": f"http://127.0.0.1:{ports['kubelet_healthz']}/healthz",
                    "kube-proxy": f"http://127.0.0.1:{ports['proxy_healthz']}/healthz",
                    "coredns": f"http://127.0.0.1:{ports['dns_health']}/health",
                    "node Ready": f"http://127.0.0.1:{ports['apiserver']}/api/v1/nodes/"
                                  "tinykube-control-plane",
                }
        for name, url in endpoints.items():
            if name in ready:
                continue
            answer = _get(url)
            if answer is None or answer[0] != 200:
                continue
            if name == "node Ready":
                conditions = json.loads(answer[1]).get("status", {}).get("conditions") or []
                if not any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in conditions):
                    continue
            ready[name] = time.monotonic()
        time.sleep(0.02)
    end = time.monotonic()
    out, err = up.communicate()
    for pid, info in _processes(home).items():
        seen[pid] = info if pid not in seen else (*seen[pid][:2], info[2])
    match = re.search(r"is up\S* in ([0-9.]+)s", err + out)
    print(f"up exited {up.returncode} after {end - start:.2f} s"
          f" (summary: {match.group(1) if match else '?'} s)")
    print("  process started at (s)  CPU at up's exit (s)")
    for pid, (name, started, cpu) in sorted(seen.items(), key=lambda kv: kv[1][1]):
        print(f"    {name:26s} {started - start:5.2f}   {cpu:5.2f}")
    print("  first healthy at (s)")
    for name, when in sorted(ready.items(), key=lambda kv: kv[1]):
        print(f"    {name:26s} {when - start:5.2f}")
    _down(env)


def summarize(label: str, values: list[float]) -> str:
    return (f"{label}: min {min(values):.2f} s, median {statistics.median(values):.2f} s, "
            f"max {max(values):.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--resume", action="store_true", help="also time one resume per run")
    parser.add_argument("--keep", action="store_true", help="keep the cluster directories")
    parser.add_argument("--timeline", action="store_true",
                        help="one run per --runs, with process start and health times")
    args = parser.parse_args()
    if args.timeline:
        print("load before:", os.getloadavg())
        for _ in range(args.runs):
            home = tempfile.mkdtemp(prefix="tinykube-bench-up-")
            try:
                timeline(home)
            finally:
                subprocess.run(DOWN, env={**os.environ, "TINYKUBE_HOME": home},
                               capture_output=True, timeout=60)
                shutil.rmtree(home, ignore_errors=True)
            time.sleep(1.0)
        return
    print("load before:", os.getloadavg())
    walls, reported, resumed = [], [], []
    for _ in range(args.runs):
        home = tempfile.mkdtemp(prefix="tinykube-bench-up-")
        env = {**os.environ, "TINYKUBE_HOME": home}
        try:
            wall, summary = _up(env)
            walls.append(wall)
            reported.append(summary)
            _down(env)
            if args.resume:
                wall, _summary = _up(env)
                resumed.append(wall)
                _down(env)
        finally:
            subprocess.run(DOWN, env=env, capture_output=True, timeout=60)
            if not args.keep:
                shutil.rmtree(home, ignore_errors=True)
        time.sleep(1.0)  # let the previous cluster's processes finish exiting
    print("load after:", os.getloadavg())
    print(summarize("new cluster, up command wall time", walls))
    print(summarize("new cluster, as up's summary reports it", reported))
    if resumed:
        print(summarize("resumed cluster, up command wall time", resumed))


if __name__ == "__main__":
    main()
