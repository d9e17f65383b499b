"""The process runtime's shim: the process between the kubelet and a pod's workloads.

Like containerd's shim (one per pod) it enters or owns the pod's namespaces, sets up a
container's private mounts, starts the command in its cgroups (posix_spawn, or a forked
child for a TTY or another user), turns stdout/stderr into CRI-format log lines and reports
the exit status. A sandbox is the pod's PID 1 itself (pause), forked by the zygote into a
new PID namespace; it owns the pod's namespaces and its /proc, and starts the pod's plain
containers itself on requests over its control socket (``PodServer``). A container that
needs stdin, a TTY or another user gets a shim of its own, forked by the zygote, as does
every exec; with stdin or a TTY that shim also serves the container's attach channel
(``Attach``). Every shim is a fork of the zygote (``python -S shim.py --zygote``, one per kubelet),
which uses only builtin modules (a spec is a ``marshal``-ed dict; ``ctypes`` is imported
only to enter namespaces), so it starts in a few milliseconds and never imports tinykube.

Protocol with the runtime for sandboxes and containers: one line on the report pipe once
the workload started (``pid <N>`` with the workload's host PID, or ``error <message>``),
then ``exit <code>`` once it ended (128 + signal when killed); a container's ``exit_file``
also gets ``<exitCode> <signal> <finishedAt> <message>``. An exec runs the command on the
stdin, stdout and stderr the runtime passed and reports alike (no ``pid`` line when the
command could not start: its stderr says why and the exit code is 126 or 127, or 128 when
the container's namespaces are gone).
"""

from __future__ import annotations

# The C module behind ``signal``: its Python wrappers turn every signal number they return
# into an enum member, and the enum machinery is a hundred of the zygote's pages that each
# forked shim would touch, and so copy. Here signals are plain ints.
import _signal as signal
import fcntl
import gc
import marshal
import os
import select
import sys
import time

TYPE_CHECKING = False  # typing itself is not imported: the shim starts on builtins only
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)
PARTIAL_LINE = 16 * 1024
QUIET = 0.05  # seconds without output after a workload exits before its log is closed

_libc = None


def libc():
    """The C library, loaded on first use: processes that enter no namespace skip ctypes."""
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(libc().setns(fd, 0), f"setns {path}")
    finally:
        os.close(fd)


def unshare(flags: int) -> None:
    _check(libc().unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    import ctypes
    enc = (lambda s: s.encode() if s is not None else None)
    _check(libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {source} on {target}")


def die_with_parent() -> None:
    libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def write_file(path: str, text: str, flags: int = os.O_WRONLY) -> None:
    """Write ``text`` to ``path`` with plain system calls. A shim uses no file objects:
    building one is among the costliest things a freshly forked shim can do, as it
    touches, and so copies, a hundred of the zygote's pages."""
    fd = os.open(path, flags, 0o666)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read_fd(fd: int, errors: str = "strict") -> str:
    """All of ``fd`` up to its end, then close it."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors=errors)


def first_line(fd: int) -> str:
    """The first line that arrives on ``fd`` (a pipe), without its newline."""
    data = b""
    while b"\n" not in data and (chunk := os.read(fd, 4096)):
        data += chunk
    return data.split(b"\n", 1)[0].decode()


def ensure_mountpoint(target: str, is_dir: bool) -> None:
    """Create the mount point if missing (the host's filesystem is the container's root)."""
    if os.path.lexists(target):
        return
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o666))


def setup_mounts(mounts: list[dict]) -> None:
    """Give this process a private mount namespace holding the container's bind mounts."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    for m in mounts:
        host, target = m["host"], m["container"]
        ensure_mountpoint(target, os.path.isdir(host))
        mount(host, target, None, MS_BIND | MS_REC)
        if m.get("readonly"):
            mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def join_cgroups(paths: list[str], check: bool = True) -> None:
    for path in paths:
        try:
            write_file(os.path.join(path, "cgroup.procs"), str(os.getpid()))
        except OSError:
            if check:
                raise


def enter_namespaces(ns: dict[str, str]) -> None:
    """setns into the given namespaces; the PID namespace applies to children only."""
    for kind in ("pid", "ipc", "uts", "net", "mnt"):
        if ns.get(kind):
            setns(ns[kind])


def exit_code_of(status: int) -> tuple[int, int]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, sig
    return os.WEXITSTATUS(status), 0


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class CRILogWriter:
    """Writes ``<RFC3339Nano> <stream> <P|F> <line>`` records, one per line of output (with
    ``os.write``: no file objects in a shim, see ``write_file``)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def _record(self, stream: str, tag: str, line: bytes) -> None:
        os.write(self.fd, f"{rfc3339nano(time.time_ns())} {stream} {tag} ".encode() + line + b"\n")

    def close(self) -> None:
        os.close(self.fd)

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        *lines, rest = buf.split(b"\n")
        for line in lines:
            self._record(stream, "F", line)
        while len(rest) >= PARTIAL_LINE:
            self._record(stream, "P", rest[:PARTIAL_LINE])
            rest = rest[PARTIAL_LINE:]
        self.pending[stream] = rest

    def flush(self, stream: str) -> None:
        if self.pending[stream]:
            self._record(stream, "F", self.pending[stream])
            self.pending[stream] = b""


REPORT_FD = 1  # a forked shim's report pipe (``_zygote_child`` sets it)


def report(kind: str, value: object) -> None:
    """One line on this shim's report pipe."""
    report_to(REPORT_FD, kind, value)


def report_to(fd: int, kind: str, value: object) -> None:
    os.write(fd, f"{kind} {value}".replace("\n", " ").encode() + b"\n")


def start_logged(spec: dict, in_pod_pidns: bool) -> tuple[int, CRILogWriter, dict[int, str]]:
    """Start the container's workload with stdin on /dev/null and its output on two pipes;
    returns its PID, its log and the pipes' read ends (-> stream). On an OSError nothing
    of this stays open."""
    log = CRILogWriter(spec["log_path"])
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = spawn(spec, (devnull, out_w, err_w), in_pod_pidns)
    except OSError:
        for fd in (out_r, err_r):
            os.close(fd)
        log.close()
        raise
    finally:
        for fd in (out_w, err_w, devnull):
            os.close(fd)
    return pid, log, {out_r: "stdout", err_r: "stderr"}


def start_failed(spec: dict, exc: OSError, report_fd: int) -> None:
    """What a container that could not start reports and leaves: exit code 128."""
    report_to(report_fd, "error", exc)
    write_exit(spec, 128, 0, str(exc))


def spawn(spec: dict, stdio: tuple[int, int, int] | None, in_pod_pidns: bool) -> int:
    """Start the workload; returns its PID or raises with exec's error.

    A plain container in a pod's PID namespace is started with posix_spawn (vfork and
    exec: no copy of this interpreter's memory to fault in and tear down again, which
    was most of a container start); a TTY or another user needs a forked child."""
    env = spec.get("env", {})
    # found before anything is started: a child that became another user may not be able
    # to read the interpreter's own modules that a PATH walk would import
    path = find_executable(spec["argv"][0], env.get("PATH", os.defpath))
    if in_pod_pidns and stdio is not None and not spec.get("tty") and spec.get("uid") is None \
            and spec.get("gid") is None:
        return spawn_direct(spec, path, env, stdio)
    return spawn_forked(spec, path, env, stdio)


def spawn_direct(spec: dict, path: str, env: dict[str, str], stdio: tuple[int, int, int]) -> int:
    """posix_spawn the workload into its cgroups: the shim joins them for the moment of
    the spawn (the child inherits them) and then goes back to its own. Without a
    parent-death signal the workload still dies with its pod: it lives in the pod's PID
    namespace, whose init dies with the sandbox shim."""
    if spec.get("cwd"):
        os.chdir(spec["cwd"])
    cgroups = spec.get("cgroups") or []
    join_cgroups(cgroups)
    try:
        return os.posix_spawn(path, spec["argv"], env, setsid=spec.get("setsid", True),
                              file_actions=[(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(stdio)])
    except OSError as exc:
        raise OSError(f'exec: "{spec["argv"][0]}": {exc.strerror or exc}') from None
    finally:
        if cgroups:
            join_cgroups(spec.get("cgroups_home") or [], check=False)


def find_executable(name: str, search_path: str) -> str:
    """The file execvpe would run for ``name`` under the container's PATH."""
    if "/" in name:
        return name
    for directory in search_path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    raise OSError(f'exec: "{name}": executable file not found in $PATH')


def spawn_forked(spec: dict, path: str, env: dict[str, str], stdio: tuple[int, int, int] | None) -> int:
    """Fork and exec the workload; returns its PID or raises with exec's error."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(err_r)
            die_with_parent()
            if stdio is not None:
                for i, fd in enumerate(stdio):
                    os.dup2(fd, i)
            if spec.get("tty"):
                os.setsid()
                fcntl.ioctl(0, TIOCSCTTY, 0)
            elif spec.get("setsid", True):
                os.setsid()
            if spec.get("cgroups"):
                join_cgroups(spec["cgroups"])
            if spec.get("gid") is not None:
                os.setgroups([])
                os.setgid(spec["gid"])
            if spec.get("uid") is not None:
                os.setuid(spec["uid"])
            if spec.get("cwd"):
                os.chdir(spec["cwd"])
            os.execve(path, spec["argv"], env)
        except BaseException as exc:  # report any failure to exec, then die
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            os.write(err_w, f'exec: "{spec["argv"][0]}": {reason}'.encode())
            os._exit(127)
    os.close(err_w)
    message = read_fd(err_r, errors="replace")
    if message:
        os.waitpid(pid, 0)
        raise OSError(message)
    return pid


def forward_signals(pid: int) -> None:
    for sig in FORWARDED:
        signal.signal(sig, lambda s, _f: os.kill(pid, s) if pid else None)


def run_container(spec: dict) -> int:
    """Run one container to completion, logging its output; the shim's exit code is its own."""
    die_with_parent()
    enter_namespaces(spec.get("ns", {}))
    in_pod_pidns = bool(spec.get("ns", {}).get("pid"))
    if spec.get("private_mounts"):
        setup_mounts(spec.get("mounts", []))
    attach = None
    try:
        if spec.get("_ctl_fd") is None:
            pid, log, pipes = start_logged(spec, in_pod_pidns)
        else:
            pid, log, pipes, attach = start_attachable(spec, in_pod_pidns)
    except OSError as exc:
        start_failed(spec, exc, REPORT_FD)
        return 128
    forward_signals(pid)
    report("pid", pid)
    pump_logs(log, pipes, pid, attach)
    if attach is not None:
        attach.close()
    _, status = os.waitpid(pid, 0)
    code, sig = exit_code_of(status)
    write_exit(spec, code, sig, "")
    return code


def start_attachable(spec: dict, in_pod_pidns: bool) -> tuple[int, CRILogWriter, dict[int, str], "Attach"]:
    """Start a container that asked for stdin or a TTY: with a TTY its stdin, stdout and
    stderr are one pseudo-terminal, else stdin is a pipe (or /dev/null) and stdout and
    stderr are pipes; either way what it reads and writes also goes through its attach
    channel (``Attach``)."""
    log = CRILogWriter(spec["log_path"])
    stdin_w = None
    if spec.get("tty"):
        master, slave = os.openpty()
        child_ends, readers = [slave], {master: "stdout"}
        stdio = (slave, slave, slave)
        if spec.get("stdin"):
            stdin_w = os.dup(master)
    else:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if spec.get("stdin"):
            in_r, stdin_w = os.pipe()
        else:
            in_r = os.open(os.devnull, os.O_RDONLY)
        child_ends, readers = [in_r, out_w, err_w], {out_r: "stdout", err_r: "stderr"}
        stdio = (in_r, out_w, err_w)
    try:
        pid = spawn(spec, stdio, in_pod_pidns)
    except OSError:
        for fd in [*readers, *([stdin_w] if stdin_w is not None else [])]:
            os.close(fd)
        log.close()
        raise
    finally:
        for fd in child_ends:
            os.close(fd)
    terminal = next(iter(readers)) if spec.get("tty") else None
    return pid, log, readers, Attach(spec["_ctl_fd"], stdin_w, terminal)


class Attach:
    """A container's attach channel to the runtime, a SOCK_SEQPACKET socket: each message out
    is its output (``\x01`` stdout or ``\x02`` stderr, then the bytes), each message in is
    ``\x00`` + bytes for its stdin, ``\x01`` to close its stdin or ``\x02W H`` to resize its
    terminal. Stdin is written without blocking: while the workload does not read, what is
    pending waits and the channel is not read (the runtime's sends wait in turn), so the
    shim keeps logging output meanwhile."""

    def __init__(self, channel: int, stdin: int | None, terminal: int | None) -> None:
        self.channel: int | None = channel
        self.stdin = stdin
        self.terminal = terminal
        self.pending = b""
        self.closing = False  # the runtime asked to close stdin: once pending is written
        if stdin is not None:
            os.set_blocking(stdin, False)
        self.poller: Poller | None = None

    def register(self, poller: Poller) -> None:
        self.poller = poller
        if self.channel is not None:
            poller.add(self.channel, "attach")

    def send(self, stream: str, data: bytes) -> None:
        if self.channel is None:
            return
        try:
            os.write(self.channel, (b"\x01" if stream == "stdout" else b"\x02") + data)
        except OSError:  # the runtime is gone: the container runs on, unattached
            self._drop_channel()

    def on_channel(self) -> None:
        assert self.channel is not None
        try:
            message = os.read(self.channel, 65536 + 16)
        except InterruptedError:
            return
        except OSError:
            message = b""
        if not message:
            self._drop_channel()
            return
        kind, data = message[:1], message[1:]
        if kind == b"\x00" and self.stdin is not None and not self.closing:
            self.pending += data
            self.on_stdin()
        elif kind == b"\x01" and self.stdin is not None and not self.closing:
            # a terminal cannot be half-closed: EOF on it is ^D, as in canonical mode
            if self.terminal is not None:
                self.pending += b"\x04"
            self.closing = True
            self.on_stdin()
        elif kind == b"\x02" and self.terminal is not None:
            try:
                cols, rows = (int(v) for v in data.split())
                fcntl.ioctl(self.terminal, TIOCSWINSZ, rows.to_bytes(2, sys.byteorder)
                            + cols.to_bytes(2, sys.byteorder) + bytes(4))
            except (ValueError, OSError):
                pass

    def on_stdin(self) -> None:
        """Write what is pending; wait for the workload to read the rest, or close stdin."""
        assert self.stdin is not None and self.poller is not None
        waiting = "stdin" in self.poller.values.values()
        while self.pending:
            try:
                self.pending = self.pending[os.write(self.stdin, self.pending):]
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError:  # the workload closed its stdin
                self.pending = b""
        if self.pending and not waiting:
            if self.channel is not None:
                self.poller.remove(self.channel)
            self.poller.add(self.stdin, "stdin", select.EPOLLOUT)
        elif not self.pending and waiting:
            self.poller.remove(self.stdin)
            if self.channel is not None:
                self.poller.add(self.channel, "attach")
        if not self.pending and self.closing:
            if self.terminal is None:  # the workload reads end of file
                os.close(self.stdin)
                self.stdin = None

    def _drop_channel(self) -> None:
        if self.channel is not None:
            if self.poller is not None and self.channel in self.poller.values:
                self.poller.remove(self.channel)
            os.close(self.channel)
            self.channel = None

    def close(self) -> None:
        """The output ended: the runtime reads end of file, so attached clients finish."""
        self._drop_channel()
        if self.stdin is not None:
            os.close(self.stdin)
            self.stdin = None


class Poller:
    """``select.epoll`` with a value per fd (``selectors`` would do, with more of the
    zygote's pages to touch in every shim)."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.values: dict[int, object] = {}

    def add(self, fd: int, value: object, events: int = select.EPOLLIN) -> None:
        self.epoll.register(fd, events)
        self.values[fd] = value

    def remove(self, fd: int) -> None:
        self.epoll.unregister(fd)
        del self.values[fd]

    def wait(self, timeout: float | None) -> list[tuple[int, object]]:
        """(fd, value) of each fd that is ready (or hung up), waiting up to ``timeout``."""
        return [(fd, self.values[fd]) for fd, _ in self.epoll.poll(-1 if timeout is None else timeout)]


def pump_logs(log: CRILogWriter, fds: dict[int, str], pid: int, attach: Attach | None = None) -> None:
    """Copy output into the log (and to the attach channel) until the workload exits and its
    pipes drain."""
    poller = Poller()
    for fd, stream in fds.items():
        poller.add(fd, stream)
    if attach is not None:
        attach.register(poller)
    exited_at = None
    while fds:
        events = poller.wait(0.5 if exited_at is None else QUIET)
        output = [(fd, stream) for fd, stream in events if fd in fds]
        if not output and exited_at is not None:
            break  # a daemonized grandchild holds the pipe; stop reading
        for fd, value in events:
            if value == "attach" and attach is not None and attach.channel == fd:
                attach.on_channel()
            elif value == "stdin" and attach is not None:
                attach.on_stdin()
        for fd, stream in output:
            try:
                data = os.read(fd, 65536)
            except (InterruptedError, BlockingIOError):
                continue
            except OSError:  # EIO: every holder of the terminal's other side is gone
                data = b""
            if not data:
                log.flush(stream)
                poller.remove(fd)
                os.close(fd)
                del fds[fd]
            else:
                log.feed(stream, data)
                if attach is not None:
                    attach.send(stream, data)
        if exited_at is None and not output and _exited(pid):
            exited_at = time.monotonic()
    for stream in ("stdout", "stderr"):
        log.flush(stream)


def _exited(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def write_exit(spec: dict, code: int, sig: int, message: str) -> None:
    if spec.get("exit_file"):
        tmp = spec["exit_file"] + ".tmp"
        write_file(tmp, f"{code} {sig} {time.time()!r} {message}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.replace(tmp, spec["exit_file"])


def run_sandbox(spec: dict) -> int:
    """The pod's infra process, forked by the zygote as PID 1 of a new PID namespace (with
    hostPID in the host's, as a child subreaper): it owns the pod's network, UTS, IPC and
    mount namespaces and reaps orphans, like the pause container, and is its own shim (one
    process per sandbox, not two)."""
    die_with_parent()
    signal.pthread_sigmask(signal.SIG_BLOCK, PAUSE_SIGNALS)  # queued for pause(), never lost
    if spec.get("cgroups"):
        join_cgroups(spec["cgroups"])
    if spec.get("netns"):
        setns(spec["netns"])
    flags = (0 if spec.get("host_ipc") else CLONE_NEWIPC) | (CLONE_NEWUTS if spec.get("hostname") else 0)
    if spec.get("own_netns"):
        flags |= CLONE_NEWNET
    if flags:
        unshare(flags)
    if spec.get("host_pid"):  # not PID 1 of a namespace of its own: orphans come back here
        _check(libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
    if spec.get("own_netns"):
        ipv4_only_devices()
    if spec.get("hostname"):
        import socket
        socket.sethostname(spec["hostname"])
    host_pid = int(os.readlink("/proc/self"))  # read before the pod's own /proc hides it
    host_proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)  # the host's, kept for host PIDs
    if spec.get("pod_proc"):
        mount_pod_proc()
    report("pid", host_pid)
    if spec.get("own_netns") and spec.get("_cmd_fd") is not None:
        configure_on_request(spec["_cmd_fd"])
    if spec.get("_ctl_fd") is not None:
        PodServer(spec["_ctl_fd"], spec.get("cgroups") or [], host_pid, host_proc).serve()
    else:
        pause()
    return 0


def ipv4_only_devices() -> None:
    """Devices that arrive in this fresh network namespace (the pod's eth0) get no IPv6:
    pods are IPv4-only, and IPv6 would cost each a link-local address, duplicate-address
    detection and MLD reports. ``lo`` keeps ::1."""
    try:
        write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")
    except FileNotFoundError:
        pass  # a kernel without IPv6


def mount_pod_proc() -> None:
    """Give the pod a mount namespace whose /proc shows the pod's PID namespace (this is
    its PID 1). Containers start from a copy of it, so none has to mount /proc itself."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", 0)


def configure_on_request(cmd_fd: int) -> None:
    """Wait for ``net <ip> <prefix> <gateway>`` (sent once the runtime moved eth0 into this
    namespace) and configure the pod's side of the network, saving two ``ip`` runs per pod."""
    try:
        line = first_line(cmd_fd).split()
    finally:
        os.close(cmd_fd)
    if len(line) != 4 or line[0] != "net":
        report("error", "no network configuration received")
        return
    try:
        configure_interfaces(line[1], int(line[2]), line[3])
    except OSError as exc:
        report("error", f"configuring eth0: {exc}")
        return
    report("netok", line[1])


SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFADDR, SIOCSIFNETMASK, SIOCADDRT = 0x8913, 0x8914, 0x8916, 0x891C, 0x890B
IFF_UP, RTF_UP, RTF_GATEWAY = 0x1, 0x1, 0x2


def _sockaddr_in(ip: str) -> bytes:
    import socket
    import struct
    return struct.pack("HH4s8x", socket.AF_INET, 0, socket.inet_aton(ip))


def configure_interfaces(ip: str, prefix: int, gateway: str) -> None:
    """lo up; eth0 <ip>/<prefix> up; default route via the bridge (SIOC* ioctls, as ifconfig/route)."""
    import socket
    import struct

    mask = socket.inet_ntoa(struct.pack("!I", (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in (b"lo", b"eth0"):
            if name == b"eth0":
                for request, addr in ((SIOCSIFADDR, ip), (SIOCSIFNETMASK, mask)):
                    fcntl.ioctl(sock, request, struct.pack("16s", name) + _sockaddr_in(addr))
            flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH22x", name, 0))[:18])[1]
            fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", name, flags | IFF_UP))
        route = struct.pack("@L16s16s16sHhLPhPLLH", 0, _sockaddr_in("0.0.0.0"), _sockaddr_in(gateway),
                            _sockaddr_in("0.0.0.0"), RTF_UP | RTF_GATEWAY, 0, 0, 0, 0, 0, 0, 0, 0)
        fcntl.ioctl(sock, SIOCADDRT, route)


PAUSE_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}


def pause() -> None:
    """Reap orphans until told to stop, like the pause container."""
    signal.pthread_sigmask(signal.SIG_BLOCK, PAUSE_SIGNALS)
    while True:
        sig = signal.sigwait(PAUSE_SIGNALS)
        if sig != signal.SIGCHLD:
            return
        for _ in reaped():
            pass


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of each child that has exited, without waiting for more."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


class PodContainer:
    """A plain container the sandbox started: its spec, report pipe, log and output pipes."""

    def __init__(self, spec: dict, report_fd: int, log: CRILogWriter, pipes: dict[int, str]) -> None:
        self.spec = spec
        self.report_fd = report_fd
        self.log = log
        self.pipes = pipes  # read end -> "stdout" | "stderr"
        self.status = 0
        self.quiet_since = 0.0  # set once the workload exited: when output last arrived

    def report(self, kind: str, value: object) -> None:
        report_to(self.report_fd, kind, value)


class PodServer:
    """The sandbox's loop once the pod's network is up: it reaps orphans, as pause does, and
    starts the pod's plain containers itself when the runtime asks (one process for the pod
    and its containers, as containerd runs one shim per pod). Each request on the control
    socket is a marshal-ed container spec with the write end of a report pipe attached; the
    container is posix_spawned into its own mount namespace and cgroups, and its report
    pipe carries what a container shim's would: ``pid <host PID>`` or ``error <message>``,
    then ``exit <code>`` once it ended, its output logged and its exit file written."""

    def __init__(self, ctl_fd: int, home_cgroups: list[str], host_pid: int, host_proc: int) -> None:
        import socket
        self.ctl: socket.socket | None = socket.socket(fileno=ctl_fd)
        self.home_cgroups = home_cgroups
        self.host_pid = host_pid
        self.host_proc = host_proc
        self.pod_mnt = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        self.poller = Poller()
        self.running: dict[int, PodContainer] = {}  # PID in the pod -> its container
        self.exited: list[PodContainer] = []
        self.stopping = False

    def serve(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # the wakeup fd is what matters
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, PAUSE_SIGNALS)  # queued ones arrive now
        assert self.ctl is not None
        self.poller.add(self.ctl.fileno(), "ctl")
        self.poller.add(wake_r, "wake")
        while not self.stopping:
            timeout = None
            if self.exited:
                timeout = max(0.0, min(c.quiet_since for c in self.exited) + QUIET - time.monotonic())
            for fd, value in self.poller.wait(timeout):
                if value == "ctl":
                    self._request()
                elif value == "wake":
                    while True:
                        try:
                            if not os.read(wake_r, 512):
                                break
                        except (BlockingIOError, InterruptedError):
                            break
                else:
                    self._output(fd, value)
            self._reap()
            now = time.monotonic()
            for c in [c for c in self.exited if not c.pipes or now - c.quiet_since >= QUIET]:
                self.exited.remove(c)
                self._finish(c)

    def _stop(self, _sig: int, _frame: object) -> None:
        self.stopping = True

    def _request(self) -> None:
        assert self.ctl is not None
        data, fds = recv_spec(self.ctl, 1)
        if not data:  # the runtime is gone; the pod's processes stay until it is killed
            self.poller.remove(self.ctl.fileno())
            self.ctl.close()
            self.ctl = None
            return
        if fds:
            self._start(marshal.loads(data), fds[0])

    def _start(self, spec: dict, report_fd: int) -> None:
        try:
            try:
                if spec.get("private_mounts"):
                    setup_mounts(spec.get("mounts", []))
                pid, log, pipes = start_logged({**spec, "cgroups_home": self.home_cgroups}, True)
            finally:
                _check(libc().setns(self.pod_mnt, CLONE_NEWNS), "setns back to the pod's mount namespace")
        except OSError as exc:
            start_failed(spec, exc, report_fd)
            report_to(report_fd, "exit", 128)
            os.close(report_fd)
            return
        c = PodContainer(spec, report_fd, log, pipes)
        for fd in c.pipes:
            self.poller.add(fd, c)
        self.running[pid] = c
        c.report("pid", self._host_pid(pid))

    def _host_pid(self, pid: int) -> int:
        """``pid`` (in the pod's PID namespace) as the host sees it: the runtime signals and
        enters containers by host PID. 0 when the child is already gone."""
        me = self.host_pid
        try:
            children = read_fd(os.open(f"{me}/task/{me}/children", os.O_RDONLY, dir_fd=self.host_proc)).split()
            for child in reversed(children):  # the newest last
                status = read_fd(os.open(f"{child}/status", os.O_RDONLY, dir_fd=self.host_proc))
                for line in status.splitlines():
                    if line.startswith("NSpid:"):
                        if int(line.split()[-1]) == pid:
                            return int(child)
                        break
        except OSError:
            pass
        return 0

    def _output(self, fd: int, c: PodContainer) -> None:
        try:
            data = os.read(fd, 65536)
        except InterruptedError:
            return
        stream = c.pipes[fd]
        if data:
            c.log.feed(stream, data)
        else:
            c.log.flush(stream)
            self._close_pipe(c, fd)
        if c.quiet_since:
            c.quiet_since = time.monotonic()

    def _close_pipe(self, c: PodContainer, fd: int) -> None:
        self.poller.remove(fd)
        os.close(fd)
        del c.pipes[fd]

    def _reap(self) -> None:
        for pid, status in reaped():
            c = self.running.pop(pid, None)
            if c is not None:  # else an orphan the pod's PID 1 inherited
                c.status = status
                c.quiet_since = time.monotonic()
                self.exited.append(c)

    def _finish(self, c: PodContainer) -> None:
        """Its output drained (or a daemonized grandchild holds the pipes): log, exit file,
        report."""
        for fd in list(c.pipes):
            self._close_pipe(c, fd)
        for stream in ("stdout", "stderr"):
            c.log.flush(stream)
        c.log.close()
        code, sig = exit_code_of(c.status)
        write_exit(c.spec, code, sig, "")
        c.report("exit", code)
        os.close(c.report_fd)


def run_exec(spec: dict) -> int:
    """Run a command inside a running container's namespaces on the stdio the runtime
    passed; report its PID, and exit with its code."""
    die_with_parent()
    spec.setdefault("setsid", False)
    stdio = (spec["_stdin_fd"], spec["_stdout_fd"], spec["_stderr_fd"])
    try:
        try:
            enter_namespaces(spec.get("ns", {}))
        except OSError as exc:  # the container is gone
            os.write(stdio[2], str(exc).encode() + b"\n")
            return 128
        try:
            pid = spawn(spec, stdio, bool(spec.get("ns", {}).get("pid")))
        except OSError as exc:
            os.write(stdio[2], str(exc).encode() + b"\n")
            return 126 if "ermission" in str(exc) else 127
    finally:
        for fd in stdio:
            os.close(fd)
    report("pid", pid)
    forward_signals(pid)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return exit_code_of(status)[0]
        except InterruptedError:
            continue


def run(spec: dict) -> int:
    try:
        return {"container": run_container, "sandbox": run_sandbox, "exec": run_exec}[spec["mode"]](spec)
    except OSError as exc:
        report("error", exc)
        return 128


def recv_spec(sock: socket.socket, max_fds: int) -> tuple[bytes, list[int]]:
    """One message and the fds attached to it (SCM_RIGHTS), as ``send_spec`` sends them;
    (b"", []) at the end of the stream. The fds arrive close-on-exec: none may reach a
    workload but as its stdio (dup2 onto 0-2 clears the flag), or it would hold a report
    pipe open."""
    import array
    import socket
    fd_size = array.array("i").itemsize
    while True:
        try:
            data, ancdata, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(max_fds * fd_size),
                                                        socket.MSG_CMSG_CLOEXEC)
            break
        except InterruptedError:
            continue
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[:len(payload) - len(payload) % fd_size])
    return data, list(fds)


def zygote(sock_fd: int) -> int:
    """Fork shims on request, so each costs a fork instead of an interpreter start.

    Requests arrive on a SOCK_SEQPACKET socket: one message is a marshal-ed spec with the
    write end of the caller's report pipe attached (SCM_RIGHTS). The forked shim reports on
    that pipe (``pid N`` ... ``exit N``); its end of file tells the caller the shim is gone.
    The zygote reaps its children and exits when the socket closes (its kubelet is gone).
    """
    import socket
    import struct  # noqa: F401  (for configure_interfaces: imported once here, not in every shim)

    die_with_parent()  # also loads ctypes and libc once, for every child to inherit
    own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY)
    sock = socket.socket(fileno=sock_fd)
    # Frozen objects are never traversed by the collector: a forked shim that collects
    # garbage would otherwise touch, and so copy, every page it shares with the zygote.
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap_children)
    while True:
        data, fds = recv_spec(sock, 4)
        if not data:
            return 0
        if not fds:
            continue
        spec = marshal.loads(data)
        sandbox = spec.get("mode") == "sandbox" and not spec.get("host_pid")  # in a PID namespace of its own
        try:
            if sandbox:
                unshare(CLONE_NEWPID)  # the next child is PID 1 of a new PID namespace
            if os.fork() == 0:
                sock.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os._exit(_zygote_child(spec, fds))
        except OSError as exc:
            report_to(fds[0], "error", exc)
        finally:
            if sandbox:
                _check(libc().setns(own_pidns, CLONE_NEWPID), "setns back to the zygote's PID namespace")
            for fd in fds:
                os.close(fd)


def _reap_children(_sig: int, _frame: object) -> None:
    for _ in reaped():
        pass


def _zygote_child(spec: dict, fds: list[int]) -> int:
    global REPORT_FD
    REPORT_FD = fds[0]
    for role, fd in zip(spec.get("fd_roles", ()), fds[1:]):  # "cmd", "ctl", "stdin", ...
        spec[f"_{role}_fd"] = fd
    code = 128
    try:
        code = run(spec)
    finally:
        report("exit", code)
    return code


def main() -> int:
    if sys.argv[1:2] != ["--zygote"] or len(sys.argv) != 3:
        sys.stderr.write("usage: shim.py --zygote FD (the process runtime starts it)\n")
        return 2
    return zygote(int(sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
