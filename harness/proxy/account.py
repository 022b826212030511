"""What a lane learns from the events it forwards: the journal's counters, token times, finish,
usage and tool calls, and how the stream ended. One definition shared by the full event path
(``server.Lane._stream``) and the pass-through path (``passthrough.relay``), so both journal the
same facts."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from ..dialects.base import Event, EventKind
from ..journal import Attempt, EndReason, Journal
from ..toolcalls import ToolCallLog

__all__ = ["account", "open_stream", "settle", "settle_left"]


async def open_stream(
    request: web.BaseRequest, attempt: Attempt, status: int, headers: list[tuple[str, str]], journal: Journal
) -> web.StreamResponse:
    """Send the upstream's status and headers to the client and note them on the attempt (its
    provider request id, status, when the headers went out): the same on both paths."""
    resp = web.StreamResponse(status=status, headers=CIMultiDict(headers))
    for k, v in headers:
        if k.lower() in ("x-request-id", "request-id"):
            attempt.request_id = v
    attempt.status = status
    await resp.prepare(request)
    attempt.t_headers = journal.now()
    return resp


def account(attempt: Attempt, batch: list[Event], journal: Journal, tools: ToolCallLog) -> EventKind | None:
    """Update counters and token times from one batch about to be written, in one pass (this is
    the lane's per-event path); returns ``ERROR``, ``TERMINATOR`` or ``FINISH`` if the batch
    carries one (in that order of precedence). Tool-call argument fragments count as tokens
    (their events have no text) and go to ``tools``."""
    now = None
    ended: EventKind | None = None
    for ev in batch:
        attempt.events += 1
        kind = ev.kind
        if kind is EventKind.ERROR:
            ended = kind
            attempt.error = attempt.error or {"inband": True}
        elif kind is EventKind.TERMINATOR and ended is not EventKind.ERROR:
            ended = kind
        elif kind is EventKind.FINISH and ended is None:
            ended = kind
        if ev.tools:
            tools.feed(ev.tools)
        if ev.text or ev.tokens:  # content (text or tool arguments), and Gemini's last chunk
            now = now if now is not None else journal.now()
            if attempt.t_first_token is None:
                attempt.t_first_token = now
            attempt.t_last_token = now
            attempt.tokens += ev.tokens
            attempt.text_chars += len(ev.text)
        if ev.finish is not None:
            attempt.finish = ev.finish
            if ended is None:
                ended = EventKind.FINISH  # a chunk with the last words and the finish reason
        if ev.usage is not None:
            attempt.usage = ev.usage.to_dict()
    return ended


def settle(attempt: Attempt, saw_terminator: bool, saw_error: bool, saw_finish: bool) -> None:
    """The end reason of a stream whose body ended (the upstream closed it, or a fault did)."""
    if saw_error:
        attempt.end_reason = EndReason.INBAND_ERROR.value
    elif saw_terminator:
        attempt.end_reason = EndReason.COMPLETE.value
        if attempt.usage and attempt.usage.get("output_tokens"):
            attempt.tokens = attempt.usage["output_tokens"]  # the provider's count beats our estimate
    elif saw_finish or (attempt.expected_tokens and attempt.tokens >= attempt.expected_tokens):
        # the body ended cleanly after the whole answer (its finish reason, or every token the
        # simulator said it would send) but without the terminator: nothing is missing but it
        attempt.end_reason = EndReason.NO_TERMINATOR.value
    else:
        attempt.end_reason = EndReason.CUT.value


def settle_left(attempt: Attempt, saw_terminator: bool, saw_error: bool, saw_finish: bool) -> None:
    """The end of a stream whose handler is leaving before the body ended: journaled as
    :func:`settle` would have, if its semantic end (the terminator, or an in-band error) already
    went to the client; left as it is otherwise (cut, client gone, upstream error).

    A client may hang up as soon as it reads the terminator (openai-python closes its response
    at ``[DONE]``), which cancels the handler while it waits for the upstream's end of body.
    Whether that end came in the same read as the terminator or a moment later is the machine's
    timing, not the stream's: either way the attempt is complete and its tokens are the
    provider's count, on both lane paths.
    """
    if (saw_terminator or saw_error) and attempt.end_reason in _ON_THE_WIRE:
        settle(attempt, saw_terminator, saw_error, saw_finish)


#: the end reasons a stream has once its semantic end is on the wire (set before the body ends)
_ON_THE_WIRE = (EndReason.COMPLETE.value, EndReason.INBAND_ERROR.value)
