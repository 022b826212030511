"""F15 ``throughput_collapse``: the rest of the answer at a crawl, paced token by token.

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event
from ...proxy.hooks import AttemptContext, StreamItem
from ..base import FaultAttrError, attr, register
from .events import StreamFault, carries_text, follow, singles, split_event


@register("throughput_collapse")
@dataclass
class ThroughputCollapse(StreamFault):
    """F15: the premium lane silently degrades: after ``after_tokens`` tokens the rest of the
    answer comes at ``tokens_per_second`` (1000 tokens/s down to 20), one token per event as a
    slow provider sends them. Every token's due time is computed from the moment of the collapse,
    so the pace never drifts however late the loop wakes up.

    Non-streaming analogue: the answer is late by the time the remaining tokens take at that rate.
    """

    after_tokens: int = attr(8, "tokens delivered at full speed first")
    tokens_per_second: float = attr(20.0, "the rate after the collapse (scaled with the drill)")

    def validate(self) -> None:
        if self.tokens_per_second <= 0:
            raise FaultAttrError("must be a number > 0", "tokens_per_second")
        if self.after_tokens < 0:
            raise FaultAttrError("must be an integer >= 0", "after_tokens")

    def _rate(self, ctx: AttemptContext) -> float:
        return self.tokens_per_second / (ctx.time_scale or 1.0)

    async def after_headers(self, ctx: AttemptContext, status: int) -> None:
        if not ctx.request.stream and status < 400 and ctx.attempt.expected_tokens:
            late = max(0, ctx.attempt.expected_tokens - self.after_tokens)
            await asyncio.sleep(late / self._rate(ctx))

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        events = follow(ctx, events)
        loop = asyncio.get_running_loop()
        rate = self._rate(ctx)
        sent = 0  # tokens before the collapse
        paced = 0  # tokens after it
        base: float | None = None  # when the collapse began
        async for batch in events:
            out: list[Event] = []
            for ev in batch:
                if not carries_text(ev):
                    out.append(ev)
                    continue
                rest: Event | None = ev
                if base is None:
                    head, rest = split_event(ctx, ev, self.after_tokens - sent)
                    if head is not None:
                        out.append(head)
                        sent += head.tokens or 1
                    if rest is None:
                        continue
                    base = loop.time()
                if out:
                    yield out
                    out = []
                assert rest is not None
                for one in singles(ctx, rest):
                    paced += one.tokens or 1
                    delay = base + paced / rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    yield [one]
            if out:
                yield out
