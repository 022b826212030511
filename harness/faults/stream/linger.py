"""F23 ``linger``: the terminator arrives, then the body stays open.

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
from ..base import register, seconds
from .events import StreamFault


@register("linger")
@dataclass
class Linger(StreamFault):
    """F23: the terminator arrives, then the connection stays open and the body unfinished for
    ``duration`` seconds (null: until the client leaves), then ends cleanly. A client that waits
    for EOF instead of the semantic terminator inflates its latency by ``duration`` (or hangs).
    The attempt is still ``complete``; its end time is when the body really ended.
    """

    duration: float | None = seconds(30.0, "seconds the body stays open after the terminator (null: forever)")

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        done = False
        async for batch in events:
            yield batch
            if any(ev.kind is EventKind.TERMINATOR for ev in batch):
                done = True
        if not done:
            return
        # the answer is complete whatever happens next (the client may leave during the wait)
        ctx.attempt.end_reason = EndReason.COMPLETE.value
        if self.duration is None:
            yield Close(CloseMode.HANG, EndReason.COMPLETE.value)
            return
        await asyncio.sleep(self.s(ctx, self.duration))
