"""The pass-through path: a forwarded stream no fault touches, spliced to the client.

When the fault plan's intervention for an attempt does not act on the stream (no
:meth:`~harness.proxy.hooks.Intervention.transform`, no ``upstream_response``: see
:meth:`~harness.proxy.hooks.Intervention.touches_stream`), there is nothing to do per event but
to journal it. The full event path still decodes every event (SSE fields, JSON, classification),
builds an object per event, and hands batches through an async generator; here each upstream read
is framed, its content events are read off their bytes by :class:`~harness.dialects.lazy.LazyEvents`,
every other event is classified in full, and the read's bytes go to the client as they came.

The client receives exactly what the full path would send, in the same writes: the frames each
read completes (an event split across reads is written once whole; a frame with no SSE field is
dropped by both paths; what an upstream leaves unterminated is written at its end). The journal
gets the same fields, by the same :func:`~harness.proxy.account.account` for every event not read
lazily and the same arithmetic for those that are. ``tests/engine/test_passthrough*.py`` hold the
two paths to that, byte for byte, with :data:`FORCE_FULL` (or ``ROUTECHAOS_FULL_PATH=1``)
selecting the full path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from aiohttp import web

from ..dialects.base import Event, EventKind
from ..dialects.lazy import LazyEvents, tokens_of
from ..journal import EndReason, Journal
from ..sse import SSEEventTooLarge
from ..toolcalls import ToolCallLog
from .account import account, open_stream, settle, settle_left
from .hooks import AttemptContext, Intervention
from .httpclient import HTTPClientError
from .upstream import UpstreamFailure, UpstreamResponse, event_of

__all__ = ["FORCE_FULL", "can_pass_through", "relay"]

#: take the full event path for every stream (the equivalence tests compare both paths)
FORCE_FULL = os.environ.get("ROUTECHAOS_FULL_PATH", "") not in ("", "0")

_ERROR, _TERMINATOR, _FINISH = EventKind.ERROR, EventKind.TERMINATOR, EventKind.FINISH


def can_pass_through(up: UpstreamResponse, iv: Intervention | None) -> bool:
    """True when this attempt's stream may be spliced: a forwarded stream whose events nobody
    wrapped (a cassette recorder taps them), and no fault acting on it."""
    src = up.source
    return src is not None and up.events is src.events and not FORCE_FULL and (iv is None or not iv.touches_stream())


def _merge(ended: EventKind | None, kind: EventKind | None) -> EventKind | None:
    """The stronger of two stream ends (an error over the terminator over a finish), as
    :func:`account` ranks them within one batch."""
    if kind is _ERROR or ended is _ERROR:
        return _ERROR
    if kind is _TERMINATOR or ended is _TERMINATOR:
        return _TERMINATOR
    return ended or kind


async def relay(
    request: web.BaseRequest,
    ctx: AttemptContext,
    up: UpstreamResponse,
    journal: Journal,
    abort: Callable[[web.BaseRequest], None],
) -> web.StreamResponse:
    """Serve ``up``'s stream to the client as it arrives; ``abort(request)`` resets the client's
    connection (an upstream that broke mid-stream)."""
    assert up.source is not None
    attempt = ctx.attempt
    source = up.source
    raw_resp = source.response
    resp = await open_stream(request, attempt, up.status, up.headers, journal)
    decoder = ctx.dialect.stream_decoder(source.max_event_bytes)
    frames_of = getattr(decoder, "frames")  # noqa: B009  (every stream decoder frames without parsing)
    lazy = LazyEvents(ctx.dialect, decoder)
    match, parse, classify = lazy.match, lazy.parse, lazy.classify
    limit = source.max_response_bytes
    tools = ToolCallLog()
    saw_terminator = saw_error = saw_finish = settled = False
    unknown = EndReason.UNKNOWN.value
    total = 0
    try:
        while True:
            try:
                chunk = await raw_resp.read_chunk()
            except HTTPClientError as exc:
                pending = decoder.pending
                if pending:
                    account(attempt, [Event(pending, EventKind.MALFORMED)], journal, tools)
                    await resp.write(pending)
                raise UpstreamFailure(f"{type(exc).__name__}: {exc}") from exc
            if not chunk:
                break
            total += len(chunk)
            if limit is not None and total > limit:
                raise UpstreamFailure(f"upstream stream exceeded {limit} bytes")
            oversized: SSEEventTooLarge | None = None
            try:
                frames = frames_of(chunk)
            except SSEEventTooLarge as exc:
                frames, oversized = [ev.raw for ev in exc.events], exc
            out = []
            ended: EventKind | None = None
            now = None
            for raw in frames:
                hit = match(raw) if lazy.templates else None
                if hit is not None:  # a content event of a known shape: its text off its bytes
                    t, text = hit
                    attempt.events += 1
                    if t.args:
                        tools.feed((t.delta._replace(arguments=text),))  # type: ignore[union-attr]
                    else:
                        attempt.text_chars += len(text)
                    if now is None:
                        now = journal.now()
                    if attempt.t_first_token is None:
                        attempt.t_first_token = now
                    attempt.t_last_token = now
                    attempt.tokens += tokens_of(text)
                    if t.usage is not None:
                        attempt.usage = dict(t.usage)
                    out.append(raw)
                    continue
                ev = parse(raw)
                if ev is None:
                    continue  # a frame without any field: the full path drops it too
                kind = account(attempt, [event_of(raw, classify(ev))], journal, tools)
                if kind is not None:
                    ended = _merge(ended, kind)
                out.append(raw)
            if ended is _TERMINATOR:
                saw_terminator = True
            elif ended is _ERROR:
                saw_error = True
            elif ended is _FINISH:
                saw_finish = True
            if out:
                await resp.write(b"".join(out))
            if (saw_terminator or saw_error) and attempt.end_reason == unknown:
                attempt.end_reason = (EndReason.INBAND_ERROR if saw_error else EndReason.COMPLETE).value
            if oversized is not None:
                raise UpstreamFailure(str(oversized)) from None
        pending = decoder.pending
        if pending:  # bytes the upstream left without an end: on to the client as it cut them
            account(attempt, [Event(pending, EventKind.MALFORMED)], journal, tools)
            await resp.write(pending)
        settle(attempt, saw_terminator, saw_error, saw_finish)
        settled = True
    except UpstreamFailure as exc:
        if attempt.end_reason == unknown:
            attempt.end_reason = EndReason.UPSTREAM_ERROR.value
            attempt.error = {"message": str(exc)}
        abort(request)
        return resp
    except ConnectionError:
        if attempt.end_reason == unknown:
            attempt.end_reason = EndReason.CLIENT_GONE.value
        return resp
    finally:
        raw_resp.close()  # a no-op once the body was read to its end
        if tools.calls:
            attempt.tool_calls = tools.result(ctx.request.tools, attempt.finish)
        if not settled:  # also when cancelled: a client that hung up at the terminator
            settle_left(attempt, saw_terminator, saw_error, saw_finish)
    attempt.t_end = journal.now()
    with contextlib.suppress(ConnectionError):
        await resp.write_eof()
    return resp
