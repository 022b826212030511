"""What every stream fault works with: splitting content events at word boundaries, following a
Responses stream's identity, keep-alives and quiet waits, and the family's base class.

Kept in one module apart from the faults (one per module beside it), so each fault reads as its
own behaviour and the helpers, written once, stay the same for all of them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...dialects.base import Event, EventKind
from ...proxy.hooks import AttemptContext
from ...sse import encode_comment
from ..base import Fault

__all__ = [
    "DATA_LINE",
    "OPENROUTER_COMMENT",
    "StreamFault",
    "carries_text",
    "follow",
    "keepalive_event",
    "pieces",
    "quiet",
    "singles",
    "split_event",
]

#: what OpenRouter writes while a request waits (``stall`` with ``keepalive: comment``)
OPENROUTER_COMMENT = "OPENROUTER PROCESSING"

_WORD = re.compile(r"\s*\S+|\s+$")
DATA_LINE = re.compile(rb"^data: ?(.*)$", re.MULTILINE)


def carries_text(ev: Event) -> bool:
    """True for events that deliver answer text: CONTENT, and Gemini's last chunk, which may carry
    the last words with the finish reason (kind TERMINATOR)."""
    return ev.kind is EventKind.CONTENT or (bool(ev.text) and ev.kind is not EventKind.ERROR)


def pieces(text: str) -> list[str]:
    """``text`` as tokens, each with its leading whitespace (a canonical token is " word")."""
    return _WORD.findall(text) or [text]


def split_event(ctx: AttemptContext, ev: Event, n: int) -> tuple[Event | None, Event | None]:
    """``ev`` cut after ``n`` of its tokens: ``(head, rest)``; either may be None.

    Re-encodes through ``ctx.encoder`` only when the event really has to be split, so untouched
    events keep the upstream's exact bytes. Only CONTENT events are split (a Gemini terminator
    with text is never cut in two: it also carries the finish).
    """
    tokens = ev.tokens or 1
    if n <= 0:
        return None, ev
    if n >= tokens or ev.kind is not EventKind.CONTENT:
        return ev, None
    words = pieces(ev.text)
    if len(words) < 2:
        return ev, None
    cut = max(1, min(len(words) - 1, round(len(words) * n / tokens)))
    head = ctx.encoder.content("".join(words[:cut]), n)
    rest = ctx.encoder.content("".join(words[cut:]), tokens - n)
    return head, rest


def singles(ctx: AttemptContext, ev: Event) -> list[Event]:
    """A content event as one event per token (a slow provider sends tokens one by one)."""
    out: list[Event] = []
    rest: Event | None = ev
    while rest is not None and (rest.tokens or 1) > 1 and rest.kind is EventKind.CONTENT:
        head, tail = split_event(ctx, rest, 1)
        if head is None or tail is None:
            break
        out.append(head)
        rest = tail
    if rest is not None:
        out.append(rest)
    return out


def follow(ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
    """``events``, teaching ``ctx.encoder`` the identity of the stream it joins.

    ``ctx.encoder`` is a fresh encoder, but on a Responses stream every event names the response
    and carries the next ``sequence_number``: an error written with another response id makes the
    openai SDK's ``responses.stream()`` raise "Lifecycle response identity changed" instead of
    reporting ``response.failed``. So, for Responses only, the ids and the sequence number are read
    from the upstream's events as they pass. (Better done by the lane; see the module notes.)
    """
    enc = ctx.encoder
    if ctx.dialect.name != "openai-responses" or not hasattr(enc, "seq"):
        return events
    return _following(enc, events)


async def _following(enc: object, events: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
    async for batch in events:
        for ev in batch:
            m = DATA_LINE.search(ev.data)
            if m is None:
                continue
            try:
                obj = json.loads(m.group(1))
            except ValueError:
                continue
            if not isinstance(obj, dict):
                continue
            if isinstance(obj.get("sequence_number"), int):
                enc.seq = obj["sequence_number"] + 1  # type: ignore[attr-defined]
            if isinstance(obj.get("item_id"), str):
                enc.item_id = obj["item_id"]  # type: ignore[attr-defined]
            resp = obj.get("response")
            if isinstance(resp, dict) and isinstance(resp.get("id"), str):
                enc.id = resp["id"]  # type: ignore[attr-defined]
                if isinstance(resp.get("created_at"), int):
                    enc.created = resp["created_at"]  # type: ignore[attr-defined]
        yield batch


def keepalive_event(ctx: AttemptContext, keepalive: str) -> Event | None:
    """The keep-alive to write while nothing else is written: the dialect's own (``ping``:
    Anthropic's ``event: ping``, an SSE comment elsewhere), OpenRouter's comment, or none."""
    if keepalive == "none":
        return None
    if keepalive == "comment":
        return Event(encode_comment(OPENROUTER_COMMENT), EventKind.KEEPALIVE)
    return ctx.encoder.keepalive()


async def quiet(
    ctx: AttemptContext, duration: float | None, ping: Event | None, interval: float
) -> AsyncIterator[list[Event]]:
    """Wait ``duration`` real seconds (None: forever, until the client leaves and the handler is
    cancelled), writing ``ping`` every ``interval`` seconds if given. Deadlines are absolute, so
    pings do not stretch the wait."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = None if duration is None else start + max(0.0, duration)
    if ping is None or interval <= 0:
        if end is None:
            await asyncio.Event().wait()
        await asyncio.sleep(max(0.0, end - loop.time()))  # type: ignore[operator]
        return
    k = 1
    while True:
        due = start + k * interval
        if end is not None and due >= end:
            await asyncio.sleep(max(0.0, end - loop.time()))
            return
        await asyncio.sleep(max(0.0, due - loop.time()))
        yield [ping]
        k += 1


@dataclass
class StreamFault(Fault):
    """Base of the stream family: acts on streamed answers only."""
