"""F19/F20 ``inband_error``: an error reported inside a stream whose 200 is committed.

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import ErrorKind, ErrorSpec, Event, EventKind
from ...journal import EndReason
from ...proxy.hooks import AttemptContext, Close, CloseMode, StreamItem
from ..base import FaultAttrError, attr, register
from .events import StreamFault, carries_text, follow, split_event


@register("inband_error")
@dataclass
class InbandError(StreamFault):
    """F19/F20: the 200 is committed, then the provider reports an error inside the stream:
    OpenAI's ``data: {"error": ...}``, Responses' ``response.failed``, Anthropic's ``event:
    error`` (``overloaded_error``), Gemini's bare ``{"error": ...}`` chunk. ``after_tokens: 0``
    puts it before any content (right after ``message_start`` / ``response.created``). The body
    then ends cleanly without a terminator. Stainless SDKs raise it from the iterator, never
    retried. Journal: ``inband_error``.
    """

    after_tokens: int = attr(0, "tokens delivered before the error (0: before any content)")
    kind: str = attr(
        "overloaded", "the error kind (overloaded, rate_limit, server_error ...)", tuple(k.value for k in ErrorKind)
    )
    message: str | None = attr(None, "override the provider's message")

    def validate(self) -> None:
        if self.after_tokens < 0:
            raise FaultAttrError("must be an integer >= 0", "after_tokens")

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        events = follow(ctx, events)
        sent = 0
        async for batch in events:
            out: list[Event] = []
            hit = False
            for ev in batch:
                if carries_text(ev) and sent < self.after_tokens:
                    head, _ = split_event(ctx, ev, self.after_tokens - sent)
                    assert head is not None
                    out.append(head)
                    sent += head.tokens or 1
                    if sent >= self.after_tokens:
                        hit = True
                        break
                elif carries_text(ev) or ev.kind in (EventKind.FINISH, EventKind.TERMINATOR):
                    hit = True  # the first token (after_tokens: 0), or a short answer's end
                    break
                else:
                    out.append(ev)
            if hit:
                yield out + self._error(ctx)
                yield Close(CloseMode.CLEAN, EndReason.INBAND_ERROR.value)
                return
            if out:
                yield out
        yield self._error(ctx)
        yield Close(CloseMode.CLEAN, EndReason.INBAND_ERROR.value)

    def _error(self, ctx: AttemptContext) -> list[Event]:
        ctx.attempt.error = {"inband": True, "kind": self.kind}
        return ctx.encoder.error(ErrorSpec(ErrorKind(self.kind), message=self.message))
