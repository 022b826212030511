"""The lane proxy: one asyncio HTTP/1.1 server per lane.

A lane parses each request with its dialect, records an attempt, asks its fault hook what (if
anything) goes wrong, and then answers from the fault, the simulator, or a real upstream,
streaming each event to the client as it arrives. Everything observed lands in the journal once,
when the attempt ends, however it ends: complete, cut, client gone, upstream error.

aiohttp's low-level server is the HTTP layer: it measured well under 1 % stream stretch at 64
concurrent 1000 tokens/s streams on two cores (see ``benchmarks/``), handles keep-alive, and
cancels the handler when the client goes away, which is how the upstream request gets cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from ..dialects import dialects_for
from ..dialects.base import BadRequest, Dialect, ErrorKind, ErrorSpec, EventKind, Rendered, RequestInfo
from ..journal import Attempt, EndReason, Journal, redact_headers, redact_url
from ..redact import redact_text
from ..toolcalls import ToolCallLog
from ..webguard import GuardedServer, describe_error
from .account import account, open_stream, settle, settle_left
from .hooks import AttemptContext, Close, CloseMode, ConnectionAction, FaultHook, Intervention
from .passthrough import can_pass_through, relay
from .upstream import Upstream, UpstreamFailure, UpstreamResponse

__all__ = ["Lane"]

log = logging.getLogger(__name__)

CALL_ID_HEADER = "x-routechaos-call-id"
MAX_BODY = 64 * 1024 * 1024
RETRY_COUNT_HEADERS = ("x-stainless-retry-count", "x-routechaos-retry-count")


class Lane:
    """One named route: a listen address, a dialect, an upstream, a journal and a fault hook."""

    def __init__(
        self,
        name: str,
        dialect: str,
        upstream: Upstream,
        journal: Journal,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultHook | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.name = name
        self.dialect_name = dialect
        self.dialects: list[Dialect] = dialects_for(dialect)
        self.upstream = upstream
        self.journal = journal
        self.host = host
        self.port = port
        self.faults = faults
        self.time_scale = time_scale
        self._server: web.Server | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._open: dict[str, Attempt] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        #: the upstream as the journal names it, redacted once (it never changes)
        self._upstream_label = redact_url(upstream.label)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL an agent points its SDK at (``http://127.0.0.1:PORT``)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def start(self) -> None:
        """Bind and accept connections (an ephemeral port when ``port`` is 0)."""
        self._server = GuardedServer(
            self._handle,
            on_error=self._protocol_error,
            handler_cancellation=True,
            access_log=None,
            keepalive_timeout=75.0,
            request_factory=self._make_request,
        )
        await self.listen()

    def _make_request(self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        # LLM requests carry images and long contexts: allow far more than aiohttp's 1 MiB default
        return web.BaseRequest(
            message, payload, protocol, writer, task, asyncio.get_running_loop(), client_max_size=MAX_BODY
        )

    def _protocol_error(self, request: web.BaseRequest, status: int, exc: BaseException | None) -> web.Response:
        """A request aiohttp could not parse (bad request line, oversized header, bad chunking,
        smuggling), or a handler that raised: answered in the lane's dialect, journaled, and
        logged on one line. The connection is closed after it (its byte stream is not trusted)."""
        if status >= 500:  # a harness bug, not bad input: the traceback is what will fix it
            log.error("lane %s: %s %s failed", self.name, request.method, redact_url(request.path), exc_info=exc)
            return self._rendered_now(self.dialects[0].render_error(ErrorSpec(ErrorKind.SERVER_ERROR)))
        attempt = self.journal.new_attempt(self.name, method="", path="", upstream=self._upstream_label)
        message = f"Malformed HTTP request: {describe_error(exc)}"
        resp = self._bad_request(request, self.dialects[0], attempt, message, status=status)
        self.journal.record(attempt)
        return resp

    @staticmethod
    def _rendered_now(r: Rendered) -> web.Response:
        return web.Response(status=r.status, headers=CIMultiDict(r.headers), body=r.body)

    async def listen(self) -> None:
        """(Re)open the listening socket on the lane's port: a lane that vanished comes back."""
        if self._listener is not None:
            return
        assert self._server is not None, "start() the lane first"
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._server, self.host, self.port, reuse_address=True, backlog=512)
        self.port = self._listener.sockets[0].getsockname()[1]

    async def unlisten(self) -> None:
        """Stop accepting: new connections are refused, as when a lane's host is gone.
        Connections already open keep working (use :meth:`drop_connections` too for a crash)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def drop_connections(self) -> None:
        """Abort every open connection (their attempts end as ``reset``)."""
        for attempt in self._open.values():
            if attempt.end_reason == EndReason.UNKNOWN.value:
                attempt.end_reason = EndReason.RESET.value
        if self._server is not None:
            for proto in list(self._server.connections):
                if proto.transport is not None:
                    _abort_with_rst(proto.transport)

    async def stop(self) -> None:
        """Stop listening, end open attempts as outcome unknown, close the upstream."""
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if self._server is not None:
            await self._server.shutdown(timeout=0.05)
        await self.upstream.close()

    async def __aenter__(self) -> Lane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- request handling ---------------------------------------------------------------------
    def _dialect_for(self, method: str, path: str) -> Dialect | None:
        for d in self.dialects:
            if d.matches(method, path):
                return d
        return None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        attempt = self.journal.new_attempt(
            self.name,
            method=request.method,
            path=redact_url(request.path_qs),
            headers=redact_headers(headers),
            upstream=self._upstream_label,
            call_id=headers.get(CALL_ID_HEADER),
            retry_count=_retry_count(headers),
        )
        self._open[attempt.id] = attempt
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await self._serve(request, headers, attempt)
        except asyncio.CancelledError:
            # cancelled by aiohttp when the client left, or by stop(): then the outcome is unknown
            if attempt.end_reason == EndReason.UNKNOWN.value and not self._stopping:
                attempt.end_reason = EndReason.CLIENT_GONE.value
            raise
        finally:
            # journal first, then leave the open set: whoever waits for "nothing open" (settle,
            # evaluate) must find every ended attempt already in the journal
            self.journal.record(attempt)
            self._open.pop(attempt.id, None)
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, request: web.BaseRequest, headers: dict[str, str], attempt: Attempt) -> web.StreamResponse:
        dialect = self._dialect_for(request.method, request.path)
        if dialect is None:
            message = f"Unknown request URL: {request.method} {redact_url(request.path)}."
            return self._bad_request(request, self.dialects[0], attempt, message, status=404)
        attempt.dialect = dialect.name
        try:
            body = await request.read()
            req = dialect.parse_request(request.method, request.path, request.query, headers, body)
        except BadRequest as exc:
            return self._bad_request(request, dialect, attempt, exc.message, status=exc.status)
        except web.HTTPException as exc:  # body too large
            return self._bad_request(request, dialect, attempt, exc.reason, status=exc.status)
        except web.RequestPayloadError as exc:  # bad chunking or encoding, found while reading the body
            message = f"Malformed HTTP request: {describe_error(exc)}"
            return self._bad_request(request, dialect, attempt, message, close=True)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a dialect that choked on odd input: still the client's 400, not a 500
            message = "The request could not be parsed."
            return self._bad_request(request, dialect, attempt, message, detail=describe_error(exc))
        attempt.operation = req.operation
        attempt.model = req.model
        attempt.stream = req.stream
        attempt.fingerprint = req.fingerprint
        if req.tools or req.tool_history:
            attempt.parent_fingerprint = req.parent_fingerprint
            attempt.tool_history = list(req.tool_history) or None
            attempt.tools_offered = [t.name for t in req.tools] or None

        ctx = AttemptContext(self.name, attempt, dialect, req, headers, self.time_scale)
        intervention = self.faults.decide(ctx) if self.faults is not None else None
        ctx.intervention = intervention
        if intervention is not None and intervention.is_fault:
            described = intervention.describe()
            attempt.fault = described if described.get("name") else None
        try:
            return await self._answer(request, ctx, body, intervention)
        except ConnectionAction as action:
            await self._drop(request, action, attempt)
            return web.Response(status=204)  # never sent: the transport is gone
        finally:
            if intervention is not None:
                intervention.finished(ctx)

    def _bad_request(
        self,
        request: web.BaseRequest,
        dialect: Dialect,
        attempt: Attempt,
        message: str,
        *,
        status: int = 400,
        close: bool = False,
        detail: str | None = None,
    ) -> web.Response:
        """A request the lane cannot serve: the dialect's own error (status ``status``), the
        attempt journaled as ``bad_request``, one log line; ``close`` ends the connection."""
        log.warning("lane %s: bad request from %s: %s", self.name, request.remote, detail or redact_text(message))
        attempt.end_reason = EndReason.BAD_REQUEST.value
        attempt.error = {"message": message}
        spec = ErrorSpec(ErrorKind.INVALID_REQUEST, status=status, message=message)
        resp = self._rendered(dialect.render_error(spec), attempt)
        if close:
            resp.force_close()
        return resp

    async def _answer(
        self, request: web.BaseRequest, ctx: AttemptContext, body: bytes, iv: Intervention | None
    ) -> web.StreamResponse:
        attempt, dialect, req = ctx.attempt, ctx.dialect, ctx.request
        if iv is not None:
            rendered = await iv.before(ctx)
            if rendered is not None:
                return self._rendered(_with_headers(rendered, iv.response_headers(ctx, rendered.status)), attempt)
        try:
            up = await self.upstream.send(request.method, request.path_qs, ctx.headers, body, req, dialect)
        except UpstreamFailure as exc:
            attempt.end_reason = EndReason.UPSTREAM_ERROR.value
            attempt.error = {"message": str(exc)}
            return self._rendered(
                dialect.render_error(ErrorSpec(ErrorKind.BAD_GATEWAY), req), attempt, keep_reason=True
            )
        attempt.expected_tokens, attempt.answer = up.expected_tokens, up.answer
        if up.encoder is not None:
            ctx._encoder = up.encoder  # events a fault writes continue the stream's ids and counters
        if up.status < 400:
            attempt.usage, attempt.finish = up.usage, up.finish
        try:
            if iv is not None:
                await iv.upstream_response(ctx, up)
                await iv.after_headers(ctx, up.status)
            extra = iv.response_headers(ctx, up.status) if iv is not None else []
            if up.events is None:
                rendered = Rendered(up.status, _merge(up.headers, extra), up.body or b"")
                return self._rendered(rendered, attempt, dialect=dialect, req=req)
            if extra:
                up.headers = _merge(up.headers, extra)
            if can_pass_through(up, iv):
                return await relay(request, ctx, up, self.journal, _abort)
            return await self._stream(request, ctx, up, iv)
        finally:
            for cleanup in ctx.cleanups:
                await cleanup()
            await up.aclose()

    def _rendered(
        self,
        r: Rendered,
        attempt: Attempt,
        *,
        keep_reason: bool = False,
        dialect: Dialect | None = None,
        req: RequestInfo | None = None,
    ) -> web.Response:
        """A whole response; the attempt ends when it is written."""
        now = self.journal.now()
        attempt.status = r.status
        attempt.t_headers = now
        attempt.retry_after = attempt.retry_after if attempt.retry_after is not None else _retry_after(r.headers)
        if not keep_reason and attempt.end_reason == EndReason.UNKNOWN.value:
            attempt.end_reason = (EndReason.COMPLETE if r.status < 400 else EndReason.ERROR_RESPONSE).value
        if r.status >= 400 and attempt.error is None:
            attempt.error = _error_summary(r.body)
        for k, v in r.headers:
            if k.lower() in ("x-request-id", "request-id"):
                attempt.request_id = v
        if r.status < 400 and attempt.expected_tokens:
            attempt.tokens = attempt.expected_tokens  # simulator answers are whole by construction
            attempt.t_first_token = attempt.t_last_token = now
        elif r.status < 400 and dialect is not None:
            info = dialect.read_completion(r.body)
            if info is not None:
                attempt.text_chars = len(info.text)
                attempt.finish = info.finish
                attempt.usage = info.usage.to_dict() if info.usage else None
                attempt.tokens = info.usage.output_tokens if info.usage else max(1, len(info.text) // 4)
                attempt.t_first_token = attempt.t_last_token = now
        if r.status < 400 and req is not None and req.tools and dialect is not None:
            # what the body says, a fault's change included: the calls, and the finish
            info = dialect.read_completion(r.body)
            if info is not None:
                attempt.finish = info.finish or attempt.finish
                log = ToolCallLog()
                log.feed(info.tools)
                attempt.tool_calls = log.result(req.tools, info.finish)
        return web.Response(status=r.status, headers=CIMultiDict(r.headers), body=r.body)

    async def _stream(
        self, request: web.BaseRequest, ctx: AttemptContext, up: UpstreamResponse, iv: Intervention | None
    ) -> web.StreamResponse:
        attempt = ctx.attempt
        journal = self.journal
        resp = await open_stream(request, attempt, up.status, up.headers, journal)
        assert up.events is not None
        items: AsyncIterator[Any] = iv.transform(ctx, up.events) if iv is not None else up.events
        saw_terminator = saw_error = saw_finish = settled = False
        tools = ToolCallLog()
        try:
            async for item in items:
                if isinstance(item, Close):
                    settled = True  # the fault's close says how the attempt ended
                    await self._close(request, resp, item, attempt)
                    return resp
                if not item:
                    continue
                ended = account(attempt, item, journal, tools)
                if ended is EventKind.TERMINATOR:
                    saw_terminator = True
                elif ended is EventKind.ERROR:
                    saw_error = True
                elif ended is EventKind.FINISH:
                    saw_finish = True
                await resp.write(b"".join(ev.data for ev in item) if len(item) > 1 else item[0].data)
                if (saw_terminator or saw_error) and attempt.end_reason == EndReason.UNKNOWN.value:
                    # the semantic end is on the wire: a client that hangs up now (openai stops
                    # reading at [DONE]) does not make a delivered answer "client_gone"
                    attempt.end_reason = (EndReason.INBAND_ERROR if saw_error else EndReason.COMPLETE).value
            settle(attempt, saw_terminator, saw_error, saw_finish)
            settled = True
        except UpstreamFailure as exc:
            if attempt.end_reason == EndReason.UNKNOWN.value:
                attempt.end_reason = EndReason.UPSTREAM_ERROR.value
                attempt.error = {"message": str(exc)}
            _abort(request)
            return resp
        except ConnectionError:
            if attempt.end_reason == EndReason.UNKNOWN.value:
                attempt.end_reason = EndReason.CLIENT_GONE.value
            return resp
        finally:
            if tools.calls:
                attempt.tool_calls = tools.result(ctx.request.tools, attempt.finish)
            if not settled:  # also when cancelled: a client that hung up at the terminator
                settle_left(attempt, saw_terminator, saw_error, saw_finish)
        attempt.t_end = journal.now()
        with contextlib.suppress(ConnectionError):
            await resp.write_eof()
        return resp

    async def _close(self, request: web.BaseRequest, resp: web.StreamResponse, close: Close, attempt: Attempt) -> None:
        attempt.end_reason = close.reason
        attempt.t_end = self.journal.now()
        if close.mode is CloseMode.CLEAN:
            with contextlib.suppress(ConnectionError):
                await resp.write_eof()
        elif close.mode is CloseMode.RESET:
            _abort(request)
        elif close.mode is CloseMode.FIN:
            if request.transport is not None:
                request.transport.close()
        elif close.mode is CloseMode.HANG:
            attempt.t_end = None
            await asyncio.Event().wait()  # until the client leaves (the handler is cancelled)

    async def _drop(self, request: web.BaseRequest, action: ConnectionAction, attempt: Attempt) -> None:
        attempt.end_reason = action.reason
        if action.delay > 0:
            await asyncio.sleep(action.delay)
        if action.mode is CloseMode.HANG:
            await asyncio.Event().wait()
        if action.mode is CloseMode.RESET:
            _abort(request)
        elif request.transport is not None:
            request.transport.close()


def _merge(headers: list[tuple[str, str]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with ``extra`` replacing any header of the same name."""
    if not extra:
        return headers
    names = {k.lower() for k, _ in extra}
    return [(k, v) for k, v in headers if k.lower() not in names] + list(extra)


def _with_headers(r: Rendered, extra: list[tuple[str, str]]) -> Rendered:
    return Rendered(r.status, _merge(r.headers, extra), r.body) if extra else r


def _abort_with_rst(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


def _abort(request: web.BaseRequest) -> None:
    if request.transport is not None:
        _abort_with_rst(request.transport)


def _retry_count(headers: Mapping[str, str]) -> int | None:
    for name in RETRY_COUNT_HEADERS:
        val = headers.get(name)
        if val is not None:
            try:
                return int(val)
            except ValueError:
                return None
    return None


def _retry_after(headers: list[tuple[str, str]]) -> float | None:
    """The delay a response asked for, as the Stainless SDKs read it (``-ms`` first)."""
    h = {k.lower(): v for k, v in headers}
    if "retry-after-ms" in h:
        with contextlib.suppress(ValueError):
            return float(h["retry-after-ms"]) / 1000
    if "retry-after" in h:
        raw = h["retry-after"]
        try:
            return float(raw)
        except ValueError:
            parsed = email.utils.parsedate_tz(raw)
            if parsed is not None:
                return max(0.0, email.utils.mktime_tz(parsed) - time.time())
    return None


def _error_summary(body: bytes) -> dict[str, Any]:
    import json

    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {"message": body[:200].decode("utf-8", "replace")}
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            return {k: err[k] for k in ("type", "code", "status", "message") if k in err}
        return {"message": str(err)}
    return {"message": str(obj)[:200]}
