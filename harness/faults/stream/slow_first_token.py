"""F14 ``slow_first_token``: the first token held while the headers are already out.

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event
from ...proxy.hooks import AttemptContext, StreamItem
from ..base import attr, register, seconds
from .events import StreamFault, carries_text, keepalive_event, quiet
from .tape import Tape


@register("slow_first_token")
@dataclass
class SlowFirstToken(StreamFault):
    """F14: the headers and the pre-content events (``message_start``, the role chunk,
    ``response.created`` ...) go out at once, then the first token is held for ``delay`` seconds.
    Anthropic fills the wait with ``ping`` events, which is why a byte-idle timer never fires and
    only a time-to-first-token budget catches it; OpenAI and Gemini send nothing at all.

    Non-streaming analogue: the whole answer is ``delay`` seconds late.
    """

    delay: float = seconds(5.0, "seconds the first content event is held")
    keepalive: str = attr(
        "auto",
        "auto (pings on Anthropic, silence elsewhere), none, or ping (the dialect's keep-alive)",
        ("auto", "none", "ping"),
    )
    ping_interval: float = seconds(5.0, "seconds between keep-alives during the wait")

    def _ping(self, ctx: AttemptContext) -> Event | None:
        mode = self.keepalive
        if mode == "auto":
            mode = "ping" if ctx.dialect.name == "anthropic" else "none"
        return keepalive_event(ctx, mode)

    async def after_headers(self, ctx: AttemptContext, status: int) -> None:
        if not ctx.request.stream and status < 400:
            await asyncio.sleep(self.s(ctx, self.delay))

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        held = False
        tape = Tape(ctx, events)  # the tokens after the first keep the upstream's pace
        async for batch in tape:
            i = next((k for k, ev in enumerate(batch) if carries_text(ev)), None) if not held else None
            if i is None:
                yield batch
                continue
            held = True
            tape.hold()
            if batch[:i]:
                yield batch[:i]
            async for ping in quiet(ctx, self.s(ctx, self.delay), self._ping(ctx), self.s(ctx, self.ping_interval)):
                yield ping
            tape.release()
            yield batch[i:]
