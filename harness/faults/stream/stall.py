"""F17/F18 ``stall``: the provider goes quiet with the socket open, masked by keep-alives or not.

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event, EventKind
from ...journal import EndReason
from ...proxy.hooks import AttemptContext, Close, CloseMode, StreamItem
from ..base import FaultAttrError, attr, register, seconds
from ..tools import InToolArguments, ToolPoint
from .events import StreamFault, carries_text, follow, keepalive_event, quiet, split_event
from .tape import Tape


@register("stall")
@dataclass
class Stall(InToolArguments, StreamFault):
    """F17/F18: after ``after_tokens`` tokens the provider goes quiet for ``duration`` seconds
    (null: until the client leaves) with the socket open. ``keepalive: none`` is the silent stall
    a read timeout catches; ``ping`` (Anthropic's ``event: ping``, an SSE comment elsewhere) and
    ``comment`` (OpenRouter's ``: OPENROUTER PROCESSING``) every ``interval`` seconds mask it, so
    only a content-idle watchdog fires. ``then: resume`` sends the rest of the answer, ``then:
    cut`` closes the connection (FIN) mid-body: journal ``cut``.

    Non-streaming analogue: the response is ``duration`` late (resume), or never comes (cut).

    With ``in: tool_arguments`` the stall is inside a tool call's arguments instead,
    ``after_fraction`` of the way through call number ``call`` (half of the first by default).
    """

    after_tokens: int = attr(4, "tokens delivered before the stall")
    duration: float | None = seconds(30.0, "seconds of silence (null: until the client leaves)")
    keepalive: str = attr(
        "none", "none, ping (the dialect's keep-alive) or comment (OpenRouter's)", ("none", "ping", "comment")
    )
    interval: float = seconds(5.0, "seconds between keep-alives")
    then: str = attr("resume", "resume (send the rest) or cut (close the connection)", ("resume", "cut"))

    def validate(self) -> None:
        self.validate_position()
        if self.after_tokens < 0:
            raise FaultAttrError("must be an integer >= 0", "after_tokens")
        if self.duration is not None and self.duration < 0:
            raise FaultAttrError("must be a number of seconds >= 0, or null", "duration")
        if self.interval <= 0:
            raise FaultAttrError("must be a number of seconds > 0", "interval")

    def _duration(self, ctx: AttemptContext) -> float | None:
        return None if self.duration is None else self.s(ctx, self.duration)

    async def after_headers(self, ctx: AttemptContext, status: int) -> None:
        if ctx.request.stream or status >= 400:
            return
        d = self._duration(ctx)
        if d is None:
            await asyncio.Event().wait()
        await asyncio.sleep(d)  # type: ignore[arg-type]
        if self.then == "cut":
            from ...proxy.hooks import ConnectionAction

            raise ConnectionAction(CloseMode.FIN, EndReason.CUT.value)

    async def _stall(self, ctx: AttemptContext) -> AsyncIterator[StreamItem]:
        ping = keepalive_event(ctx, self.keepalive)
        async for item in quiet(ctx, self._duration(ctx), ping, self.s(ctx, self.interval)):
            yield item
        if self.then == "cut":
            yield Close(CloseMode.FIN, EndReason.CUT.value)

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        if self.in_tool_arguments:
            tape = Tape(ctx, events)  # after a resume the rest keeps the upstream's pace
            async for item in self.at_point(ctx, tape):
                if not isinstance(item, ToolPoint):
                    yield item
                    continue
                if self.then == "resume":
                    tape.hold()
                async for quiet in self._stall(ctx):
                    yield quiet
                    if isinstance(quiet, Close):
                        return
                tape.release()
            return
        events = follow(ctx, events)
        sent = 0
        stalled = False
        tape = Tape(ctx, events)  # after a resume the rest keeps the upstream's pace
        async for batch in tape:
            if stalled:
                yield batch
                continue
            out: list[Event] = []
            rest: list[Event] = []
            for ev in batch:
                if stalled:
                    rest.append(ev)
                elif carries_text(ev) and sent < self.after_tokens:
                    head, tail = split_event(ctx, ev, self.after_tokens - sent)
                    assert head is not None
                    out.append(head)
                    sent += head.tokens or 1
                    if tail is not None:
                        stalled = True
                        rest.append(tail)
                elif carries_text(ev) or ev.kind in (EventKind.FINISH, EventKind.TERMINATOR):
                    stalled = True  # the next token (or a short answer's end) waits
                    rest.append(ev)
                else:
                    out.append(ev)
            if stalled and self.then == "resume":
                tape.hold()
            if out:
                yield out
            if stalled:
                async for item in self._stall(ctx):
                    yield item
                    if isinstance(item, Close):
                        return
                tape.release()
                if rest:
                    yield rest
