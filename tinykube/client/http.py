"""A small HTTP/1.1 keep-alive connection pool for the REST client's unary requests.

Every GET/PUT/POST/PATCH/DELETE a component makes goes through here: a general-purpose
client's per-request overhead showed up in the kubelet's CPU while starting pods. Only
what the API server needs is implemented: one origin per pool, persistent connections
reused most-recently-idle first, bodies framed by Content-Length, chunked transfer coding
or the end of the connection (RFC 9112 section 6). Watches and other streams stay on aiohttp.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

CONNECT_TIMEOUT = 10.0  # seconds to open (and TLS-handshake) a new connection
REQUEST_TIMEOUT = 60.0  # seconds for a whole request, waiting for a free connection included
IDLE_TIMEOUT = 30.0  # idle connections older than this are closed rather than reused
MAX_HEAD = 1024 * 1024  # a status line and headers larger than this are not an API server's
NO_BODY_STATUSES = frozenset({204, 304})
# Sent again on a fresh connection when a reused one dies before answering (RFC 9110's
# idempotent methods): a POST or PATCH the server may have applied is not repeated.
REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class ProtocolError(ConnectionError):
    """The server's answer is not valid HTTP/1.1."""


class _Stale(Exception):
    """A reused connection failed before any byte of the answer arrived: most likely the
    server closed it while idle, so an idempotent request can go out again on a fresh one."""


class Headers(dict[str, str]):
    """Response headers, keyed by lower-case name, looked up case-insensitively."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a pool's connections go, parsed once from the client's server URL."""

    scheme: str
    host: str  # without IPv6 brackets, as the socket layer wants it
    port: int
    base_path: str  # a path prefix of the server URL ('' for most clusters)
    host_header: str  # host[:port] as Host and the request metrics show it

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported server URL {url!r}: expected http(s)://host[:port]")
        default_port = 443 if parts.scheme == "https" else 80
        port = parts.port or default_port
        host = parts.hostname  # lower-cased, brackets stripped
        if ":" in host and "%" not in host:
            host = str(ipaddress.IPv6Address(host))  # canonical: [0:0::1] is shown as [::1]
        shown = f"[{host}]" if ":" in host else host
        if port != default_port:
            shown = f"{shown}:{port}"
        return cls(parts.scheme, host, port, parts.path.rstrip("/"), shown)


def encode_query(params: Mapping[str, str]) -> str:
    """``k=v&...`` with every reserved character percent-encoded (a space as %20, never
    '+'), so selectors like ``a in (x,y),b!=c`` reach the server exactly as given."""
    return "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in params.items())


def request_target(origin: Origin, path: str, params: Mapping[str, str] | None) -> str:
    """The request line's target: the server's path prefix, the path and the query."""
    if not path.isascii() or " " in path:
        path = quote(path, safe="/%:@!$&'()*+,;=?~")
    target = origin.base_path + path
    if params:
        target += ("&" if "?" in target else "?") + encode_query(params)
    return target


class _Connection(asyncio.Protocol):
    """One persistent connection: the protocol the event loop feeds, and the bytes received
    but not yet consumed (read straight into one buffer, no stream in between)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.reused = False
        self.idle_since = 0.0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # nothing more to send either: let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- use ----------------------------------------------------------------------------

    def usable(self, now: float) -> bool:
        """Whether an idle connection may carry another request: the server has neither
        closed it nor sent anything unasked, and it has not idled too long."""
        return (not self._eof and not self.buffer and not self.transport.is_closing()
                and now - self.idle_since < IDLE_TIMEOUT)

    def close(self, abort: bool = False) -> None:
        """Close gracefully, or drop at once what is unsent (a failed or cancelled request)."""
        if abort:
            self.transport.abort()
        else:
            self.transport.close()

    async def fill(self) -> bool:
        """Wait until more bytes are in the buffer; False at the end of the stream."""
        size = len(self.buffer)
        while len(self.buffer) == size:
            if self._eof:
                if self._error is not None:
                    raise ConnectionError(str(self._error) or type(self._error).__name__
                                          ) from self._error
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return True

    async def read_until(self, separator: bytes, limit: int) -> bytes:
        start = 0
        while (end := self.buffer.find(separator, start)) < 0:
            if len(self.buffer) > limit:
                raise ProtocolError(f"no {separator!r} in the first {limit} bytes of the answer")
            start = max(0, len(self.buffer) - len(separator) + 1)
            if not await self.fill():
                raise ConnectionError("the server closed the connection mid-answer")
        data = bytes(self.buffer[:end])
        del self.buffer[:end + len(separator)]
        return data

    async def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not await self.fill():
                raise ConnectionError(f"the server closed the connection after "
                                      f"{len(self.buffer)} of {size} body bytes")
        if len(self.buffer) == size:  # the usual case: the body ends what was read
            data = bytes(self.buffer)
            self.buffer.clear()
            return data
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_to_eof(self) -> bytes:
        while await self.fill():
            pass
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


def _parse_head(head: bytes) -> tuple[str, int, str, Headers]:
    """Status line and header fields -> (version, status, reason, headers)."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"bad status line {lines[0][:100]!r}")
    headers = Headers()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t" or name[0] in " \t":
            raise ProtocolError(f"bad header line {line[:100]!r}")
        name, value = name.lower(), value.strip()
        if (first := headers.setdefault(name, value)) is not value:  # a repeated field
            headers[name] = f"{first}, {value}"
    return version, int(code), reason, headers


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in value.split(",")} if value else set()


async def _read_chunked(conn: _Connection) -> bytes:
    """A chunked body (RFC 9112 section 7.1); chunk extensions and trailers are ignored."""
    parts: list[bytes] = []
    while True:
        size_line = await conn.read_until(b"\r\n", MAX_HEAD)
        size_text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_line[:100]!r}") from None
        if size == 0:
            while await conn.read_until(b"\r\n", MAX_HEAD):
                pass  # a trailer field
            return b"".join(parts)
        parts.append(await conn.read_exactly(size))
        if await conn.read_exactly(2) != b"\r\n":
            raise ProtocolError("a chunk does not end with CRLF")


async def _read_response(conn: _Connection, method: str) -> tuple[Response, bool]:
    """Read one answer; returns it and whether the connection can carry another request."""
    try:
        while not conn.buffer:
            if not await conn.fill():
                raise ConnectionError("the server closed the connection without answering")
    except OSError as exc:
        if conn.reused:
            raise _Stale(str(exc)) from exc
        raise
    while True:
        version, status, reason, headers = _parse_head(await conn.read_until(b"\r\n\r\n", MAX_HEAD))
        if not 100 <= status < 200 or status == 101:
            break  # 1xx answers are interim: the final one follows
    field = dict.get  # the names are lower-case already: skip Headers' own lookups
    connection = _tokens(field(headers, "connection"))
    keep_alive = "close" not in connection and status != 101 and (
        version != "HTTP/1.0" or "keep-alive" in connection)
    if method == "HEAD" or status in NO_BODY_STATUSES or status < 200:
        body = b""
    elif (coding := field(headers, "transfer-encoding")) is not None:
        if coding.rsplit(",", 1)[-1].strip().lower() == "chunked":
            body = await _read_chunked(conn)
            keep_alive = keep_alive and field(headers, "content-length") is None
        else:
            body, keep_alive = await conn.read_to_eof(), False
    elif (length := field(headers, "content-length")) is not None:
        if not length.isdigit():
            raise ProtocolError(f"bad Content-Length {length[:100]!r}")
        body = await conn.read_exactly(int(length))
    else:
        body, keep_alive = await conn.read_to_eof(), False
    return Response(status, reason, headers, body), keep_alive and not conn.buffer


class ConnectionPool:
    """At most ``size`` connections to one origin; a request waits for a free one."""

    def __init__(self, server: str, ssl_context: ssl.SSLContext | None, size: int,
                 headers: Mapping[str, str], *, connect_timeout: float = CONNECT_TIMEOUT,
                 timeout: float = REQUEST_TIMEOUT) -> None:
        self.origin = Origin.parse(server)
        if self.origin.scheme == "https" and ssl_context is None:
            ssl_context = ssl.create_default_context()
        self._ssl = ssl_context if self.origin.scheme == "https" else None
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Connection] = []  # the most recently used last
        self._open: set[_Connection] = set()
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        fixed = {"Host": self.origin.host_header, **headers}
        self._fixed_headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items())

    @property
    def connections(self) -> int:
        """How many connections are open, busy or idle."""
        return len(self._open)

    async def request(self, method: str, target: str, body: bytes | None = None,
                      content_type: str | None = None) -> Response:
        """Send one request and read the whole answer.

        Transport failures raise ``ConnectionError``; running out of ``timeout`` raises
        ``TimeoutError``, which the components catch apart from connection failures."""
        message = self._encode(method, target, body, content_type)
        async with asyncio.timeout(self._timeout):
            async with self._slots:
                try:
                    try:
                        return await self._exchange(self._take_idle() or await self._connect(),
                                                    method, message)
                    except _Stale as exc:
                        if method not in REPLAYABLE:
                            raise ConnectionError(f"connection lost before an answer: {exc}") from exc
                        return await self._exchange(await self._connect(), method, message)
                except ConnectionError:
                    raise
                except OSError as exc:  # TLS errors, resets, the OS's own timeouts
                    raise ConnectionError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        """Close every connection; requests still running fail."""
        self._idle.clear()
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        await asyncio.sleep(0)  # let the transports finish closing before the loop may end

    def _encode(self, method: str, target: str, body: bytes | None,
                content_type: str | None) -> bytes:
        head = f"{method} {target} HTTP/1.1\r\n{self._fixed_headers}"
        if body is None:
            return (head + "\r\n").encode("latin-1")
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                conn.reused = True
                return conn
            self._discard(conn)
        return None

    async def _connect(self) -> _Connection:
        origin = self.origin
        conn = _Connection()
        try:
            async with asyncio.timeout(self._connect_timeout):
                await asyncio.get_running_loop().create_connection(
                    lambda: conn, origin.host, origin.port, ssl=self._ssl,
                    server_hostname=origin.host if self._ssl else None)
        except TimeoutError:
            raise ConnectionError(f"timed out connecting to {origin.host_header}") from None
        except OSError as exc:
            raise ConnectionError(f"cannot connect to {origin.host_header}: {exc}") from exc
        self._open.add(conn)
        return conn

    async def _exchange(self, conn: _Connection, method: str, message: bytes) -> Response:
        """One request on ``conn``; the connection goes back to the pool only after a
        complete answer that leaves it reusable, and is closed on any failure."""
        try:
            # A failed write surfaces as the connection lost while waiting for the answer.
            # The transport buffers what the socket does not take at once: the message is
            # in memory already, so there is nothing to gain from waiting for it to drain.
            conn.transport.write(message)
            response, keep_alive = await _read_response(conn, method)
        except BaseException:
            self._discard(conn, abort=True)
            raise
        if keep_alive:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
            self._expire_oldest(conn.idle_since)
        else:
            self._discard(conn)
        return response

    def _expire_oldest(self, now: float) -> None:
        """Close connections idle too long, so a quiet client does not hold them open."""
        while self._idle and now - self._idle[0].idle_since >= IDLE_TIMEOUT:
            self._discard(self._idle.pop(0))

    def _discard(self, conn: _Connection, abort: bool = False) -> None:
        self._open.discard(conn)
        conn.close(abort)
