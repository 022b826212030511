"""F21 (bytes) ``split_utf8``: every multi-byte character split across two writes.

One module per fault of the stream family, with its one ``@register`` line, as Toxiproxy keeps one
toxic per file; the helpers they share are in :mod:`harness.faults.stream.events`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event, EventKind
from ...proxy.hooks import AttemptContext, StreamItem
from ..base import register, seconds
from .events import DATA_LINE, StreamFault


def _raw_utf8(data: bytes) -> bytes:
    """``data`` with every JSON ``data:`` line re-encoded with raw UTF-8 instead of ``\\uXXXX``
    escapes (what OpenAI and Anthropic really send), so that there are multi-byte characters on
    the wire to split. Lines that are not JSON are left alone."""

    def fix(m: re.Match[bytes]) -> bytes:
        body = m.group(1)
        if b"\\u" not in body:
            return m.group(0)
        try:
            obj = json.loads(body)
        except ValueError:
            return m.group(0)
        return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    return DATA_LINE.sub(fix, data)


def _cut_points(data: bytes) -> list[int]:
    """Offsets inside each multi-byte UTF-8 character (just after its lead byte)."""
    return [i + 1 for i, b in enumerate(data) if b >= 0xC0]


@register("split_utf8")
@dataclass
class SplitUtf8(StreamFault):
    """F21: every multi-byte UTF-8 character (``café``, ``naïve``) is split across two writes
    ``gap`` seconds apart, so the client's reads end mid-character, as when a proxy re-chunks a
    stream. A client that decodes each read on its own garbles the text or crashes; one that
    decodes whole lines gets it intact. The fragments are written as MALFORMED events with no
    text, and the piece that completes an event carries its text and tokens for the journal.
    """

    gap: float = seconds(0.01, "seconds between the two halves of a character")

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        gap = self.s(ctx, self.gap)
        async for batch in events:
            pending: list[Event] = []
            for ev in batch:
                data = _raw_utf8(ev.data)
                cuts = _cut_points(data)
                if not cuts:
                    pending.append(ev if data == ev.data else _with_data(ev, data))
                    continue
                pieces = [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]
                for piece in pieces[:-1]:
                    pending.append(Event(piece, EventKind.MALFORMED))
                    yield pending
                    pending = []
                    await asyncio.sleep(gap)
                pending.append(_with_data(ev, pieces[-1]))
            if pending:
                yield pending


def _with_data(ev: Event, data: bytes) -> Event:
    return Event(data, ev.kind, ev.text, ev.tokens, ev.finish, ev.usage)
