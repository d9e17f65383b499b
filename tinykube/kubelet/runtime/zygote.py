"""Starting shims cheaply: a fork server for ``shim.py`` and a handle on each shim it forks.

Starting a Python interpreter per sandbox and per container costs tens of milliseconds of
CPU; forking a warm one costs about one. The zygote is the kubelet's child (it dies with
it, and its shims die with it); each shim reports on a pipe the runtime reads here.
"""

from __future__ import annotations

import array
import asyncio
import marshal
import os
import socket
import sys

from tinykube import aio

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.py")


class ZygoteClosedError(OSError):
    """spawn() after close(): the runtime is shutting down."""


class ShimHandle:
    """One shim forked by the zygote: its report pipe tells when it started and how it ended."""

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.ReadTransport,
                 command_fd: int | None = None) -> None:
        self.reader = reader
        self.transport = transport
        self.command_fd = command_fd
        self.returncode: int | None = None
        self._done: asyncio.Future[int] | None = None

    def send_command(self, line: str) -> None:
        """Write one line to the shim's command pipe (then closed: one command per shim)."""
        assert self.command_fd is not None
        try:
            os.write(self.command_fd, line.encode() + b"\n")
        finally:
            os.close(self.command_fd)
            self.command_fd = None

    async def first_report(self) -> dict:
        line = (await self.reader.readline()).decode(errors="replace").rstrip("\n")
        kind, _, value = line.partition(" ")
        if kind == "pid" and value.isdigit():
            return {"pid": int(value)}
        if kind == "netok":
            return {"netok": value}
        if kind == "error":
            return {"error": value}
        if kind == "exit":
            self._finish(int(value) if value.lstrip("-").isdigit() else 128)
        else:
            await self.wait()
        return {"error": f"shim exited with code {self.returncode}"}

    def _finish(self, code: int) -> None:
        self.returncode = code
        self.transport.close()

    async def wait(self) -> int:
        """The workload's exit code once the shim is gone (137 if the shim was killed)."""
        if self.returncode is not None:
            return self.returncode
        if self._done is None:
            self._done = asyncio.ensure_future(self._read_to_end())
        return await asyncio.shield(self._done)

    async def _read_to_end(self) -> int:
        code = 137
        while line := await self.reader.readline():
            kind, _, value = line.decode(errors="replace").rstrip("\n").partition(" ")
            if kind == "exit" and value.lstrip("-").isdigit():
                code = int(value)
        self._finish(code)
        return code


async def send_spec(sock: socket.socket, spec: dict, fds: list[int]) -> ShimHandle:
    """Send ``spec`` with a new report pipe's write end and ``fds`` on ``sock`` (the zygote's,
    or a sandbox's control socket) and return the handle reading that pipe. ``fds`` stay
    open here: they are the caller's."""
    read_fd, write_fd = os.pipe()
    try:
        sock.sendmsg([marshal.dumps(spec)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [write_fd, *fds]))])
    except OSError:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return ShimHandle(*await _pipe_reader(read_fd))


async def _pipe_reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
    """A stream reading the pipe ``fd`` (owned by the transport from now on)."""
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    return reader, transport


class Zygote:
    """The shim fork server (``shim.py --zygote``): forking a warm interpreter costs far less
    than starting one per sandbox and container. Started on first use, stopped by close()."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.sock: socket.socket | None = None
        self._lock = asyncio.Lock()
        self.closed = False

    def _check_open(self) -> None:
        if self.closed:
            raise ZygoteClosedError("the shim fork server is closed: the runtime is shutting down")

    async def start(self) -> None:
        """Start the fork server now rather than on the first spawn (an interpreter start
        the first pod of a burst, and every pod queued behind it, would wait for)."""
        await self._ensure()

    async def _ensure(self) -> socket.socket:
        self._check_open()
        async with self._lock:
            self._check_open()  # close() may have run while this waited for the lock
            if self.proc is None or self.proc.returncode is not None or self.sock is None:
                if self.sock is not None:
                    self.sock.close()
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                try:
                    self.proc = await asyncio.create_subprocess_exec(
                        sys.executable, "-S", SHIM, "--zygote", str(theirs.fileno()),
                        pass_fds=[theirs.fileno()], stdin=asyncio.subprocess.DEVNULL)
                finally:
                    theirs.close()
                self.sock = ours
            return self.sock

    async def spawn(self, spec: dict, *, command_pipe: bool = False,
                    control: socket.socket | None = None,
                    stdio: tuple[int, int, int] | None = None) -> ShimHandle:
        """Fork a shim for ``spec``; with ``command_pipe`` it also gets a pipe to read one
        command from (the sandbox waits on it for its network configuration), with
        ``control`` that socket (a sandbox serves container starts on it), with ``stdio``
        the stdin, stdout and stderr of the command it runs (an exec). The caller's fds
        stay open."""
        self._check_open()
        sock = await self._ensure()
        cmd_read, cmd_write = os.pipe() if command_pipe else (None, None)
        roles = {"cmd": cmd_read, "ctl": control.fileno() if control is not None else None,
                 **dict(zip(("stdin", "stdout", "stderr"), stdio or (None, None, None)))}
        spec = {**spec, "fd_roles": [role for role, fd in roles.items() if fd is not None]}
        try:
            handle = await send_spec(sock, spec, [fd for fd in roles.values() if fd is not None])
        except BaseException:
            if cmd_write is not None:
                os.close(cmd_write)
            raise
        finally:
            if cmd_read is not None:
                os.close(cmd_read)
        handle.command_fd = cmd_write
        return handle

    async def close(self) -> None:
        """Stop the fork server for good: spawn() raises from now on instead of starting a
        new one (a pod worker still starting a sandbox must not outlive the runtime)."""
        self.closed = True
        async with self._lock:  # a start in flight finishes first, then is stopped here
            if self.sock is not None:
                self.sock.close()  # the zygote reads end-of-file and exits
                self.sock = None
            if self.proc is not None:
                try:
                    await aio.wait_for(self.proc.wait(), 5)
                except asyncio.TimeoutError:
                    self.proc.kill()
                    await self.proc.wait()
                self.proc = None


class ExecProcess:
    """A command run in a container by a shim the zygote forked, with what the runtime uses
    of ``asyncio.subprocess.Process``: its pipes, ``wait()``, ``returncode`` and
    ``send_signal()``. ``pid`` is the command's own (host) PID."""

    def __init__(self, handle: ShimHandle, pid: int, stdin: asyncio.StreamWriter | None,
                 stdout: asyncio.StreamReader | None, stderr: asyncio.StreamReader | None) -> None:
        self.handle = handle
        self.pid = pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None

    @classmethod
    async def start(cls, zygote: Zygote, spec: dict, stdin: int, stdout: int, stderr: int) -> ExecProcess:
        """Fork the shim with ``stdin``/``stdout``/``stderr`` as for ``create_subprocess_exec``:
        ``asyncio.subprocess.PIPE``, ``DEVNULL`` or an fd of the caller's (a terminal).
        Raises OSError with exec's message when the command cannot start."""
        loop = asyncio.get_running_loop()
        theirs: list[int] = []
        ours: list[int] = []  # closed on failure: the pipe ends this side keeps
        try:
            for i, how in enumerate((stdin, stdout, stderr)):
                if how == asyncio.subprocess.PIPE:
                    read_fd, write_fd = os.pipe()
                    theirs.append(read_fd if i == 0 else write_fd)
                    ours.append(write_fd if i == 0 else read_fd)
                elif how == asyncio.subprocess.DEVNULL:
                    theirs.append(os.open(os.devnull, os.O_RDWR))
                    ours.append(-1)
                else:
                    theirs.append(os.dup(how))
                    ours.append(-1)
            handle = await zygote.spawn(spec, stdio=(theirs[0], theirs[1], theirs[2]))
        except BaseException:
            for fd in ours:
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        streams: list = []
        for i, fd in enumerate(ours):
            if fd < 0:
                streams.append(None)
            elif i == 0:
                transport, protocol = await loop.connect_write_pipe(
                    asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", 0))
                streams.append(asyncio.StreamWriter(transport, protocol, None, loop))
            else:
                streams.append((await _pipe_reader(fd))[0])
        proc = cls(handle, 0, *streams)
        report = await handle.first_report()
        if "pid" in report:
            proc.pid = report["pid"]
        elif handle.returncode is not None:  # the command did not start: its stderr says why
            proc.returncode = handle.returncode
        else:  # no shim to run it
            await proc.wait()
            raise OSError(report["error"])
        return proc

    async def communicate(self) -> tuple[bytes, bytes]:
        """All of stdout and stderr (piped), once the command has exited."""
        async def read(stream: asyncio.StreamReader | None) -> bytes:
            return await stream.read() if stream is not None else b""

        out, err, _ = await asyncio.gather(read(self.stdout), read(self.stderr), self.wait())
        return out, err

    async def wait(self) -> int:
        self.returncode = await self.handle.wait()
        if self.stdin is not None:
            self.stdin.close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None and self.pid:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
