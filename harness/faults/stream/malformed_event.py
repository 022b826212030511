"""F21 ``malformed_event``: one event whose JSON is cut short, then the stream goes on.

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event, EventKind
from ...proxy.hooks import AttemptContext, StreamItem
from ..base import FaultAttrError, attr, register
from .events import StreamFault


@register("malformed_event")
@dataclass
class MalformedEvent(StreamFault):
    """F21: one ``data:`` event whose JSON is cut short (a relay that split a write, a buffer
    overflow), injected after ``after_events`` events; the stream then goes on normally. By
    default it is the dialect's own content event, truncated right after its text (``data:
    {"choices":[{"delta":{"content":"unterminated`` for OpenAI); ``payload`` overrides it
    (sent as is, a blank line added when missing). A stream with fewer events gets it just
    before its terminator.
    """

    after_events: int = attr(3, "events delivered before the malformed one")
    payload: str | None = attr(None, "the raw event to inject instead of the dialect's truncated one")

    def validate(self) -> None:
        if self.after_events < 0:
            raise FaultAttrError("must be an integer >= 0", "after_events")

    def _bad(self, ctx: AttemptContext) -> Event:
        if self.payload is not None:
            raw = self.payload.encode()
            if not raw.endswith(b"\n\n"):
                raw = raw.rstrip(b"\n") + b"\n\n"
            return Event(raw, EventKind.MALFORMED)
        marker = "unterminated"
        # a scratch encoder, so ids/sequence numbers of events the fault may write later are untouched
        data = ctx.dialect.stream_encoder(ctx.request).content(marker).data
        end = data.find(marker.encode())
        raw = data[: end + len(marker)] if end >= 0 else data[: len(data) // 2]
        return Event(raw + b"\n\n", EventKind.MALFORMED)

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        n = 0
        injected = self.after_events == 0
        if injected:
            yield [self._bad(ctx)]
        async for batch in events:
            if injected:
                yield batch
                continue
            k = self.after_events - n
            # a stream shorter than after_events still gets it, just before its terminator
            k = min([k, *(i for i, ev in enumerate(batch) if ev.kind is EventKind.TERMINATOR)])
            if k < len(batch):
                injected = True
                yield [*batch[:k], self._bad(ctx), *batch[k:]]
                continue
            n += len(batch)
            yield batch
