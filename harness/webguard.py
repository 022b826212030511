"""What the harness's HTTP servers do with requests that are not theirs.

Two things every server here shares:

* **Control surfaces answer only local programs.** The control API (which can take lanes down and,
  through ``POST /calls``, write the evidence a verdict is judged on) and the embedded Toxiproxy
  listen on loopback, but a web page open in the developer's browser can reach loopback too. So,
  as Toxiproxy does (``stopBrowsersMiddleware`` in its ``api.go``: a ``Mozilla/`` user agent gets
  a 403) and more, :class:`Gate` refuses what only a browser sends: a browser user agent, an
  ``Origin`` or ``Sec-Fetch-*`` header, a ``Host`` that is not the address the server bound (a
  DNS-rebinding page names its own domain), and a write whose body is not declared JSON (the
  content types a page may send without a preflight are ``text/plain``, forms and multipart).
  Real clients (toxiproxy-python, toxiproxy-cli, httpx, curl with ``-H 'Content-Type:
  application/json'``) send none of these.
* **A request aiohttp cannot parse still gets this server's own answer.** A bad request line, an
  oversized header, bad chunking or a request-smuggling attempt (both ``Content-Length`` and
  ``Transfer-Encoding``) is refused by aiohttp's parser before any handler runs; aiohttp then
  writes a ``text/plain`` 400 that echoes the offending bytes (an oversized ``Authorization``
  header included) and logs a full traceback. :class:`GuardedServer` hands those errors to the
  server's renderer instead (a lane answers in its dialect and journals the attempt), which logs
  one redacted line. It is aiohttp's own low-level ``web.Server`` with ``RequestHandler.
  handle_error`` overridden, the hook aiohttp itself uses to answer such errors.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import HttpVersion11, web, web_protocol
from aiohttp.web_protocol import RequestHandler

from .redact import redact_text

__all__ = ["Gate", "GuardedAppRunner", "GuardedServer", "Refusal", "describe_error"]

ErrorRenderer = Callable[[web.BaseRequest, int, "BaseException | None"], web.StreamResponse]

_BROWSER_ONLY = ("origin", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
_STATUS_PREFIX = re.compile(r"^\d{3}, message:\s*")
#: how aiohttp queues a parse error as a message (private: without it, the hook below is a no-op)
_PARSE_ERROR: Any = getattr(web_protocol, "_ErrInfo", ())


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: the status (403 or 415) and a message for its body."""

    status: int
    message: str


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` or ``[v6]:port`` as (lower-case host, port); None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = value.partition(":") if value.count(":") <= 1 else (value, "", "")
    if not host:
        return None
    if not port_text:
        return host, None
    if not port_text.isdigit() or len(port_text) > 5:
        return None
    return host, int(port_text)


class Gate:
    """Decides, from a request's method, headers and whether it has a body, whether a control
    surface serves it. Pure: :meth:`check` touches no socket, so it is tested without one.

    ``bind(host, port)`` once the listening address is known (port 0 picks one): the ``Host``
    header must then name that port, and either the bound address, ``localhost``, or (for a
    wildcard bind such as ``0.0.0.0``) any IP address; ``extra_hosts`` adds names (a Docker
    service name, say) for servers reached by name on purpose.
    """

    def __init__(self, extra_hosts: Iterable[str] = ()) -> None:
        self.extra_hosts = frozenset(h.lower().strip("[]") for h in extra_hosts)
        self._names: frozenset[str] = frozenset()
        self._port: int | None = None
        self._any_ip = False
        self.bound = ""

    def bind(self, host: str, port: int) -> None:
        host = host.lower().strip("[]")
        self._port = port
        self._any_ip = host in ("", "0.0.0.0", "::")
        names = {host, *_LOOPBACK_NAMES, *self.extra_hosts}
        if host in _LOOPBACK_NAMES:
            names |= {"127.0.0.1", "::1"}
        self._names = frozenset(names)
        self.bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def host_allowed(self, value: str | None) -> bool:
        if value is None or self._port is None:
            return True  # HTTP/1.0 without Host is no browser; an unbound gate knows no address
        parts = _split_host(value)
        if parts is None:
            return False
        host, port = parts
        if (port if port is not None else 80) != self._port:
            return False
        return host in self._names or (self._any_ip and _is_ip(host))

    def check(self, method: str, headers: Mapping[str, str], has_body: bool) -> Refusal | None:
        """None when the request may be served, else why not."""
        if headers.get("User-Agent", "").startswith("Mozilla/"):
            return Refusal(403, "User agent not allowed")
        for name in _BROWSER_ONLY:
            if name in headers:
                return Refusal(403, f"requests from a web page are refused ({name.title()} header present)")
        host = headers.get("Host")
        if not self.host_allowed(host):
            return Refusal(403, f"Host {host!r} is not this server's address; use {self.bound}")
        if method in _WRITES and has_body:
            ctype = headers.get("Content-Type", "").partition(";")[0].strip().lower()
            if not (ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))):
                return Refusal(415, "the body must be JSON, sent with Content-Type: application/json")
        return None

    def check_request(self, request: web.BaseRequest) -> Refusal | None:
        return self.check(request.method, request.headers, request.body_exists)


def describe_error(exc: BaseException | None) -> str:
    """One short, redacted line for a protocol error: aiohttp's messages quote the offending
    bytes (a 1 MB header, a request line with ``?key=``), which must reach no log."""
    if isinstance(exc, web.RequestPayloadError) and exc.__cause__ is not None:
        exc = exc.__cause__  # the parser's own error, which says what was wrong with the body
    if exc is None:
        return "malformed request"
    text = str(getattr(exc, "message", "") or exc)
    text = _STATUS_PREFIX.sub("", text).strip()
    text = text.partition(":")[0].partition("\n")[0]  # what follows quotes the offending bytes
    return redact_text(f"{type(exc).__name__}: {text.strip()}"[:160])


class _Handler(RequestHandler):
    """aiohttp's connection handler with protocol errors answered by the server's renderer."""

    __slots__ = ("_render",)

    def __init__(self, manager: web.Server, render: ErrorRenderer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._render = render
        make = self._request_factory

        def request_factory(message: Any, *args: Any) -> web.BaseRequest:
            # aiohttp answers in the version the request line claimed: "HTTP/2.0" or "HTTP/1.7"
            # got a status line no HTTP/1 client can read. Answer as HTTP/1.1, then close.
            if tuple(message.version) > (1, 1) or message.version[0] != 1:
                message = message._replace(version=HttpVersion11, should_close=True)
            return make(message, *args)

        self._request_factory = request_factory

    def data_received(self, data: bytes) -> None:
        messages = getattr(self, "_messages", ())
        queued = len(messages)
        super().data_received(data)
        if len(messages) > queued:
            self._fail_open_body(messages[-1][0])

    def _fail_open_body(self, err: Any) -> None:
        """aiohttp's C parser reports an error inside a body that is being read (bad chunking
        arriving after the headers) as a new error message, and leaves the handler of that
        request waiting for the rest of its body until the client gives up. Fail the body
        instead, so the handler answers the client now."""
        request = getattr(self, "_current_request", None)
        if request is not None and isinstance(err, _PARSE_ERROR) and not request.content.is_eof():
            request.content.set_exception(web.RequestPayloadError(err.message))
            request.content.feed_eof()  # nothing more will come: aiohttp must not linger reading it

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # a body that failed to parse was answered by the handler already; aiohttp then finds
        # the same error again while draining the body, and would log it with a traceback
        if isinstance(kw.get("exc_info"), web.RequestPayloadError):
            self.log_debug(*args, **kw)
        else:
            super().log_exception(*args, **kw)

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: the response is under way, only a cut is left
            raise ConnectionError("response already started")
        try:
            resp = self._render(request, status, exc)
        except Exception:
            logging.getLogger(__name__).exception("rendering an error response failed")
            resp = web.json_response({"error": "internal error", "status": 500}, status=500)
        resp.force_close()  # after a parse error the connection's byte stream cannot be trusted
        return resp


class GuardedServer(web.Server):
    """aiohttp's low-level server whose protocol errors (and unhandled handler exceptions, as
    status 500) are answered by ``on_error(request, status, exc)``."""

    def __init__(
        self,
        handler: Any,
        *,
        on_error: ErrorRenderer,
        loop: asyncio.AbstractEventLoop | None = None,
        request_factory: Any = None,
        handler_cancellation: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            handler, request_factory=request_factory, handler_cancellation=handler_cancellation, loop=loop, **kwargs
        )
        self.on_error = on_error
        self._handler_loop = loop or asyncio.get_running_loop()
        self._handler_kwargs = kwargs

    def __call__(self) -> RequestHandler:
        return _Handler(self, self.on_error, loop=self._handler_loop, **self._handler_kwargs)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server is a :class:`GuardedServer` (for ``web.Application``
    servers: the control API and the embedded Toxiproxy)."""

    def __init__(self, app: web.Application, *, on_error: ErrorRenderer, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._on_error = on_error
        self._server_kwargs = {k: v for k, v in kwargs.items() if k not in ("handle_signals", "shutdown_timeout")}

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the application's startup and freeze, as aiohttp does them
        return GuardedServer(
            plain.request_handler,
            on_error=self._on_error,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            **self._server_kwargs,
        )
