"""F16 ``stream_cut``: the stream stops mid-answer (FIN, RST or a clean end without terminator).

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event
from ...journal import EndReason
from ...proxy.hooks import AttemptContext, Close, CloseMode, StreamItem
from ..base import FaultAttrError, attr, register
from ..tools import InToolArguments, ToolPoint
from .events import StreamFault, carries_text, follow, split_event


@register("stream_cut")
@dataclass
class StreamCut(InToolArguments, StreamFault):
    """F16: capacity vanishes mid-answer: after ``after_events`` events or ``after_tokens``
    tokens (whichever comes first; 8 tokens when neither is set) the stream stops without its
    finish and terminator. ``mode`` says how: ``fin`` closes the TCP connection without the
    chunked body's last chunk, ``reset`` sends an RST, ``clean`` ends the HTTP body properly but
    the dialect's terminator never comes. The journal says ``cut``.

    With ``in: tool_arguments`` the cut is inside a tool call's arguments instead,
    ``after_fraction`` of the way through call number ``call`` (half of the first by default):
    the half-written call an agent must never execute.
    """

    after_tokens: int | None = attr(None, "content tokens delivered before the cut")
    after_events: int | None = attr(None, "events (of any kind) delivered before the cut")
    mode: str = attr("fin", "fin, reset or clean", ("fin", "reset", "clean"))

    def __post_init__(self) -> None:
        if self.after_tokens is None and self.after_events is None and not self.in_tool_arguments:
            self.after_tokens = 8

    def validate(self) -> None:
        self.validate_position()
        for name in ("after_tokens", "after_events"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise FaultAttrError("must be an integer >= 0", name)

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        if self.in_tool_arguments:
            async for item in self.at_point(ctx, events):
                if isinstance(item, ToolPoint):
                    yield Close(CloseMode(self.mode), EndReason.CUT.value)
                    return
                yield item
            return
        events = follow(ctx, events)
        max_events, max_tokens = self.after_events, self.after_tokens
        n_events = n_tokens = 0
        async for batch in events:
            out: list[Event] = []
            cut = False
            for ev in batch:
                if max_events is not None and n_events >= max_events:
                    cut = True
                    break
                if max_tokens is not None and carries_text(ev):
                    if n_tokens >= max_tokens:  # after_tokens: 0, the pre-content events are out
                        cut = True
                        break
                    head, _ = split_event(ctx, ev, max_tokens - n_tokens)
                    assert head is not None
                    ev = head
                    n_tokens += ev.tokens or 1
                    cut = n_tokens >= max_tokens
                out.append(ev)
                n_events += 1
                if cut or (max_events is not None and n_events >= max_events):
                    cut = True
                    break
            if out:
                yield out
            if cut:
                yield Close(CloseMode(self.mode), EndReason.CUT.value)
                return
        # the answer was shorter than the cut point: it went out whole, and the lane says so
