"""A minimal HTTP/1.1 client on an asyncio ``Protocol``, for exactly what a lane forwards.

Why not aiohttp: per request its client costs ~0.45 ms CPU on a 2-core drill machine (the lane's
largest single cost), and per streamed event its ``StreamReader`` plus a rescheduled read timer add
up again. A lane needs much less: one origin, keep-alive, a request written in one go, and the
response body handed on piece by piece exactly as it arrives. This module does only that:

* ``http``/``https`` (``ssl.create_default_context()``, SNI = host), IPv4/IPv6, per-origin pool of
  idle keep-alive connections (reused only after a response was read to its end);
* bodies framed by ``Content-Length``, ``Transfer-Encoding: chunked`` (trailers ignored) or the
  connection's end; none for ``HEAD``/1xx/204/304;
* a connect timeout, and a read (idle) timeout checked lazily: ``data_received`` only stores the
  time, and one timer per idle period decides (no timer is created and cancelled per chunk);
* every failure (refused, reset, timeout, malformed response, body cut short) is ``HTTPClientError``;
* leaving a body unread (``Response.close()``, a cancelled task) aborts the connection, so the
  upstream sees the disconnect and the request is cancelled there too.
"""

from __future__ import annotations

import asyncio
import collections
import re
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["HTTPClient", "HTTPClientError", "HTTPTimeoutError", "Origin", "Response"]

MAX_HEAD = 64 * 1024  # status line + headers
MAX_CHUNK_LINE = 4096  # chunk-size line incl. extensions
PAUSE_AT = 256 * 1024  # unread body bytes at which the socket stops being read (backpressure)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_CHUNK_LINE = re.compile(rb"([0-9a-fA-F]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")  # size, extensions ignored
_STATUS_LINE = re.compile(r"(HTTP/1\.[01]) ([0-9]{3})(?: ([^\r]*))?\r?")
_HEADER_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r]*?)[ \t]*\r?")  # no bare CR in values

# body framing / parser states
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILER, _UNTIL_EOF, _DONE = range(8)


class HTTPClientError(OSError):
    """The upstream could not be reached, broke the connection, answered malformed HTTP or too late."""


class HTTPTimeoutError(HTTPClientError, TimeoutError):
    """Connecting, or waiting for the next bytes of a response, took longer than allowed."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: scheme, host, port, and a path prefix taken from the base URL."""

    scheme: str
    host: str
    port: int
    prefix: str = ""
    host_header: str = field(default="", compare=False)

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        return cls(parts.scheme, host, port, parts.path.rstrip("/"), shown if port == default else f"{shown}:{port}")


class _Conn(asyncio.Protocol):
    """One connection and the parser of the response currently read on it.

    Body pieces are parsed straight out of ``data_received`` into ``_chunks``; a reader waiting
    in ``Response.read_chunk`` is woken through a single future. The parser state survives
    between reads, so a chunk header split across TCP segments is fine.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float | None) -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.got_bytes = False  # any byte of the current response arrived
        self.keep_alive = True  # the current response allows reusing the connection
        self._buf = bytearray()
        self._state = _DONE
        self._head_only = False  # response to HEAD: no body whatever the headers say
        self._remaining = 0
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._exc: BaseException | None = None
        self._head: tuple[int, str, list[tuple[str, str]]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._last_data = 0.0
        self._wait_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._state == _UNTIL_EOF:
            self._state = _DONE
        elif self._state != _DONE and self._exc is None:
            what = "before the response head" if self._state == _HEAD else "before the end of the body"
            reason = f": {exc}" if exc else ""
            self._exc = HTTPClientError(f"connection closed by the upstream {what}{reason}")
        self._wake()

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.read_timeout is not None:
            self._last_data = self.loop.time()
        try:
            self._parse(data)
        except HTTPClientError as exc:
            self._fail(exc)
            return
        if self._buffered >= PAUSE_AT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost decides whether the body was complete

    # ---------------------------------------------------------------- request side

    def start(self, data: bytes, head_only: bool) -> None:
        """Write a whole request and reset the parser for its response."""
        assert self.transport is not None
        self._state = _HEAD
        self._head_only = head_only
        self._head = None
        self._exc = None
        self.got_bytes = False
        self.keep_alive = True
        self._buf.clear()
        self.transport.write(data)

    async def wait(self) -> None:
        """Until the parser made progress, the connection ended, or the read timeout passed."""
        if self._exc is not None:
            raise self._exc
        self._waiter = waiter = self.loop.create_future()
        if self.read_timeout is not None:
            self._wait_since = self.loop.time()
            if self._timer is None:
                self._timer = self.loop.call_at(self._wait_since + self.read_timeout, self._check_timeout)
        try:
            await waiter
        finally:
            self._waiter = None
        if self._exc is not None:
            raise self._exc

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _check_timeout(self) -> None:
        """The lazy read timer: re-armed at the real deadline if data came meanwhile."""
        self._timer = None
        if self._waiter is None or self._waiter.done() or self.read_timeout is None:
            return  # nobody waits now; the next wait arms a new timer
        deadline = max(self._last_data, self._wait_since) + self.read_timeout
        if self.loop.time() >= deadline - 0.001:
            self._fail(HTTPTimeoutError(f"no data from the upstream for {self.read_timeout:g} s"))
        else:
            self._timer = self.loop.call_at(deadline, self._check_timeout)

    def _fail(self, exc: HTTPClientError) -> None:
        if self._exc is None:
            self._exc = exc
        self.abort()
        self._wake()

    def abort(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- reading

    def take(self) -> bytes | None:
        """Body bytes received so far (joined), b"" at the end of the body, None if none yet."""
        chunks = self._chunks
        if chunks:
            data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._buffered = 0
            if self._paused and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            return data
        if self._exc is not None:
            raise self._exc
        return b"" if self._state == _DONE else None

    # ---------------------------------------------------------------- parser

    def _parse(self, data: bytes) -> None:
        """Advance the parser over ``data``; body pieces go to ``_chunks`` as they are.

        Works on immutable ``bytes`` (slices are the pieces handed on, no extra copy); only an
        incomplete line (head, chunk size, trailer) is kept in ``_buf`` for the next segment.
        """
        state = self._state
        if state == _LENGTH and len(data) < self._remaining:  # fast path: a piece of a sized body
            self._remaining -= len(data)
            self._push(data)
            return
        if state == _UNTIL_EOF:
            self._push(data)
            return
        if self._buf:
            self._buf += data
            buf = bytes(self._buf)
            self._buf.clear()
        else:
            buf = data
        pos = 0
        end = len(buf)
        while pos < end:
            if state == _CHUNK_SIZE:  # the common case of a stream: one whole chunk per segment
                i = buf.find(b"\n", pos)
                if i < 0:
                    if end - pos > MAX_CHUNK_LINE:
                        raise HTTPClientError("chunk size line too long")
                    break
                m = _CHUNK_LINE.match(buf, pos, i + 1)
                if m is None:
                    raise HTTPClientError(f"malformed chunk size line {buf[pos:i][:40]!r}")
                size = int(m.group(1), 16)
                pos = i + 1
                if size == 0:
                    state = _TRAILER
                elif end - pos >= size + 2 and buf[pos + size : pos + size + 2] == b"\r\n":
                    self._push(buf[pos : pos + size])  # whole chunk and its CRLF here
                    pos += size + 2
                else:
                    self._remaining = size
                    state = _CHUNK_DATA
            elif state == _CHUNK_DATA or state == _LENGTH:
                n = min(end - pos, self._remaining)
                self._push(buf[pos : pos + n])
                pos += n
                self._remaining -= n
                if self._remaining == 0:
                    state = _CHUNK_CRLF if state == _CHUNK_DATA else _DONE
            elif state == _CHUNK_CRLF:
                if buf[pos : pos + 2] == b"\r\n":
                    pos += 2
                elif buf[pos : pos + 1] == b"\n":
                    pos += 1
                elif end - pos < 2 and buf[pos : pos + 1] == b"\r":
                    break
                else:
                    raise HTTPClientError("chunk data not followed by CRLF")
                state = _CHUNK_SIZE
            elif state == _HEAD:
                i = buf.find(b"\r\n\r\n", pos)
                j = buf.find(b"\n\n", pos)
                if i < 0 and j < 0:
                    if end - pos > MAX_HEAD:
                        raise HTTPClientError("response head too large")
                    break
                stop, skip = (j, 2) if i < 0 or 0 <= j < i else (i, 4)
                version, status, reason, headers = _parse_head(buf[pos:stop])
                pos = stop + skip
                if 100 <= status < 200 and status != 101:
                    continue  # interim response (100 Continue, 103 Early Hints): the real one follows
                self._head = (status, reason, headers)
                conn_opts = ",".join(v for k, v in headers if k.lower() == "connection").lower()
                self.keep_alive = "close" not in conn_opts and (version == "HTTP/1.1" or "keep-alive" in conn_opts)
                state = self._framing(status, headers)
            elif state == _TRAILER:
                i = buf.find(b"\n", pos)
                if i < 0:
                    if end - pos > MAX_HEAD:
                        raise HTTPClientError("chunked trailer too large")
                    break
                blank = i == pos or (i == pos + 1 and buf[pos] == 13)
                pos = i + 1
                if blank:
                    state = _DONE
            elif state == _UNTIL_EOF:
                self._push(buf[pos:end])
                pos = end
            else:  # _DONE, and bytes after the end of a response (or while idle): never reuse this connection
                self.keep_alive = False
                self.abort()  # the body already parsed stays readable
                pos = end
        if pos < end:
            self._buf += buf[pos:]
        self._state = state

    def _push(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._buffered += len(data)

    def _framing(self, status: int, headers: list[tuple[str, str]]) -> int:
        """The parser state for the body of this response (RFC 9112 §6.3)."""
        if self._head_only or status in (204, 304) or 100 <= status < 200:
            return _DONE
        te = cl = None
        for k, v in headers:
            lk = k.lower()
            if lk == "transfer-encoding":
                te = v if te is None else f"{te}, {v}"
            elif lk == "content-length":
                if cl is not None and cl != v.strip():
                    raise HTTPClientError("conflicting Content-Length headers")
                cl = v.strip()
        if te is not None:
            if te.rsplit(",", 1)[-1].strip().lower() == "chunked":
                return _CHUNK_SIZE
            return _UNTIL_EOF
        if cl is not None:
            if not (cl.isascii() and cl.isdigit()):
                raise HTTPClientError(f"malformed Content-Length {cl[:40]!r}")
            self._remaining = int(cl)
            return _LENGTH if self._remaining else _DONE
        return _UNTIL_EOF


def _parse_head(raw: bytes) -> tuple[str, int, str, list[tuple[str, str]]]:
    """Status line and header fields, strictly: a proxy must not guess at what it forwards."""
    lines = raw.decode("utf-8", "surrogateescape").split("\n")  # as aiohttp decodes (and the lane re-encodes) them
    m = _STATUS_LINE.fullmatch(lines[0])
    if m is None:
        raise HTTPClientError(f"malformed status line {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        h = _HEADER_LINE.fullmatch(line)
        if h is None:  # also obs-fold continuation lines, which RFC 9112 lets a client reject
            raise HTTPClientError(f"malformed header line {line[:80]!r}")
        headers.append((h.group(1), h.group(2)))
    return m.group(1), int(m.group(2)), m.group(3) or "", headers


class Response:
    """A response whose head has arrived; the body is read with ``read_chunk``/``async for``/``read``.

    The connection goes back to the pool when the body was read to its end; ``close()`` before
    that aborts it (which is how the upstream learns that the caller went away).
    """

    __slots__ = ("_conn", "_max_idle", "_pool", "headers", "reason", "status")

    def __init__(
        self, status: int, reason: str, headers: list[tuple[str, str]], conn: _Conn, pool: list[_Conn], max_idle: int
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._conn: _Conn | None = conn
        self._pool = pool
        self._max_idle = max_idle

    def header(self, name: str, default: str = "") -> str:
        """The first header called ``name`` (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    async def read_chunk(self) -> bytes:
        """The body bytes received since the last call (waiting for some), b"" at the end."""
        conn = self._conn
        if conn is None:
            return b""
        try:
            while True:
                data = conn.take()
                if data is not None:
                    break
                await conn.wait()
        except BaseException:
            self.close()
            raise
        if not data:
            self._release()
        return data

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        data = await self.read_chunk()
        if not data:
            raise StopAsyncIteration
        return data

    async def read(self) -> bytes:
        """The whole body."""
        parts = [chunk async for chunk in self]
        return b"".join(parts)

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        transport = conn.transport
        if conn.closed or not conn.keep_alive or transport is None or transport.is_closing():
            conn.abort()
            return
        if len(self._pool) >= self._max_idle:
            conn.closed = True
            transport.close()  # a clean FIN: this response was complete
            return
        conn.idle_since = conn.loop.time()
        self._pool.append(conn)

    def close(self) -> None:
        """Stop reading: a connection whose response was not read to its end is never reused."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.abort()


class HTTPClient:
    """A keep-alive pool per origin; ``request`` returns once the response head has arrived."""

    def __init__(
        self,
        *,
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 600.0,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 256,
        idle_timeout: float = 15.0,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout  # below typical server keep-alive timeouts: avoids reuse races
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Conn]] = {}

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def request(
        self, origin: Origin, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
    ) -> Response:
        """Send one request (``target`` = path and query) and wait for the response head."""
        parts = [f"{method} {origin.prefix}{target} HTTP/1.1\r\nHost: {origin.host_header}\r\n"]
        for k, v in headers:
            if "\n" in k or "\r" in k or "\n" in v or "\r" in v:
                raise ValueError(f"header {k!r} contains a line break")
            parts.append(f"{k}: {v}\r\n")
        if body or method in ("POST", "PUT", "PATCH"):
            parts.append(f"Content-Length: {len(body)}\r\n")
        parts.append("Connection: keep-alive\r\n\r\n")
        data = "".join(parts).encode("utf-8", "surrogateescape") + body
        pool = self._idle.setdefault(origin, [])
        head_only = method == "HEAD"
        while True:
            conn = self._pooled(pool)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin)
            try:
                conn.start(data, head_only)
                while conn._head is None:
                    await conn.wait()
            except HTTPClientError:
                conn.abort()
                if reused and not conn.got_bytes and method in IDEMPOTENT:
                    continue  # the server closed the idle connection as we reused it: once more, fresh
                raise
            except BaseException:
                conn.abort()
                raise
            status, reason, resp_headers = conn._head
            return Response(status, reason, resp_headers, conn, pool, self.max_idle)

    def _pooled(self, pool: list[_Conn]) -> _Conn | None:
        """The most recently used idle connection still open (older ones are dropped)."""
        if not pool:
            return None
        now = pool[-1].loop.time()
        while pool:
            conn = pool.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                if now - conn.idle_since < self.idle_timeout:
                    return conn
            conn.abort()
        return None

    async def _connect(self, origin: Origin) -> _Conn:
        loop = asyncio.get_running_loop()
        conn = _Conn(loop, self.read_timeout)
        tls = self._ssl_context() if origin.scheme == "https" else None
        # asyncio's own loop races IPv6 and IPv4 addresses; other loops (uvloop) refuse the keyword
        eyeballs = {"happy_eyeballs_delay": 0.25} if isinstance(loop, asyncio.BaseEventLoop) else {}
        try:
            async with asyncio.timeout(self.connect_timeout):
                await loop.create_connection(
                    lambda: conn,
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls else None,
                    **eyeballs,
                )
        except TimeoutError:
            conn.abort()
            raise HTTPTimeoutError(f"connecting to {origin.host}:{origin.port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise HTTPClientError(f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        return conn

    async def close(self) -> None:
        """Close every idle connection (responses still being read keep theirs until closed)."""
        for pool in self._idle.values():
            for conn in pool:
                conn.abort()
            pool.clear()
