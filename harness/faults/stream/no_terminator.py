"""F22 ``no_terminator``: the whole answer, but never the stream's terminator.

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event, EventKind
from ...proxy.hooks import AttemptContext, StreamItem
from ..base import register
from .events import StreamFault, follow


@register("no_terminator")
@dataclass
class NoTerminator(StreamFault):
    """F22: the whole answer and its finish arrive, the body ends cleanly, but the terminator
    never does: no ``data: [DONE]``, no ``message_stop``. For Responses and Gemini the terminal
    event *is* the finish (``response.completed``, the chunk with ``finishReason``): it is dropped
    too (text it carries, as Gemini's last chunk may, is kept as a plain content chunk). A client
    must finalise promptly without it.

    Journal: ``no_terminator``, outcome ok: the lane saw the finish reason (Chat's
    ``finish_reason`` chunk, Anthropic's ``message_delta``), or, where the finish went with the
    terminal event, every token the upstream said it would send. Gemini has no terminator apart
    from that chunk (its stream is complete at the chunk with ``finishReason`` and the end of the
    body), so on Gemini this fault is "the finish never came"; behind a forwarding lane, which
    cannot know the answer's length, a Responses or Gemini stream without its terminal event is
    ``cut``.
    """

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        events = follow(ctx, events)
        async for batch in events:
            out: list[Event] = []
            for ev in batch:
                if ev.kind is EventKind.TERMINATOR:
                    if ev.text:
                        out.append(ctx.encoder.content(ev.text, ev.tokens or 1))
                    continue
                out.append(ev)
            if out:
                yield out
        # the lane ends the body cleanly and records ``no_terminator`` (see the class notes)
