"""Faults of the stream family: the 200 is committed, then the stream itself misbehaves.

Each fault is one :meth:`~harness.proxy.hooks.Intervention.transform` over the lane's event
batches (reference: provider-wire-formats.md, F14-F23). Every batch a transform yields is one
``resp.write`` on the wire, so a fault controls exactly what the client can read and when; a
:class:`~harness.proxy.hooks.Close` tells the lane how the connection ends and what the journal
says about it.

Events a fault writes itself come from ``ctx.encoder`` (the attempt's dialect), so an Anthropic
lane pings with ``event: ping``, an OpenAI lane errors with ``data: {"error": ...}`` and a Gemini
lane with a bare ``{"error": ...}`` chunk. Content events the simulator grouped (several tokens in
one event) are split at word boundaries when a fault must act between two tokens.

For non-streaming requests the transform is never called. Faults whose non-stream analogue is
plain lateness (``slow_first_token``, ``throughput_collapse``, ``stall``) delay the whole response
instead, in :meth:`after_headers`; the others leave non-streaming requests alone.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..dialects.base import ErrorKind, ErrorSpec, Event, EventKind
from ..journal import EndReason
from ..proxy.hooks import AttemptContext, Close, CloseMode, StreamItem
from ..sse import encode_comment
from .base import Fault, FaultAttrError, attr, register, seconds
from .tools import InToolArguments, ToolPoint

__all__ = [
    "InbandError",
    "Linger",
    "MalformedEvent",
    "NoTerminator",
    "SlowFirstToken",
    "SplitUtf8",
    "Stall",
    "StreamCut",
    "StreamFault",
    "ThroughputCollapse",
]

#: what OpenRouter writes while a request waits (``stall`` with ``keepalive: comment``)
OPENROUTER_COMMENT = "OPENROUTER PROCESSING"

_WORD = re.compile(r"\s*\S+|\s+$")
_DATA = re.compile(rb"^data: ?(.*)$", re.MULTILINE)


# -- helpers ----------------------------------------------------------------------------------
def _carries_text(ev: Event) -> bool:
    """True for events that deliver answer text: CONTENT, and Gemini's last chunk, which may carry
    the last words with the finish reason (kind TERMINATOR)."""
    return ev.kind is EventKind.CONTENT or (bool(ev.text) and ev.kind is not EventKind.ERROR)


def _pieces(text: str) -> list[str]:
    """``text`` as tokens, each with its leading whitespace (a canonical token is " word")."""
    return _WORD.findall(text) or [text]


def _split(ctx: AttemptContext, ev: Event, n: int) -> tuple[Event | None, Event | None]:
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
    words = _pieces(ev.text)
    if len(words) < 2:
        return ev, None
    cut = max(1, min(len(words) - 1, round(len(words) * n / tokens)))
    head = ctx.encoder.content("".join(words[:cut]), n)
    rest = ctx.encoder.content("".join(words[cut:]), tokens - n)
    return head, rest


def _singles(ctx: AttemptContext, ev: Event) -> list[Event]:
    """A content event as one event per token (a slow provider sends tokens one by one)."""
    out: list[Event] = []
    rest: Event | None = ev
    while rest is not None and (rest.tokens or 1) > 1 and rest.kind is EventKind.CONTENT:
        head, tail = _split(ctx, rest, 1)
        if head is None or tail is None:
            break
        out.append(head)
        rest = tail
    if rest is not None:
        out.append(rest)
    return out


async def _events(batches: AsyncIterator[list[Event]]) -> AsyncIterator[Event]:
    """The upstream's batches flattened to single events."""
    async for batch in batches:
        for ev in batch:
            yield ev


def _follow(ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
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
            m = _DATA.search(ev.data)
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


def _keepalive_event(ctx: AttemptContext, keepalive: str) -> Event | None:
    """The keep-alive to write while nothing else is written: the dialect's own (``ping``:
    Anthropic's ``event: ping``, an SSE comment elsewhere), OpenRouter's comment, or none."""
    if keepalive == "none":
        return None
    if keepalive == "comment":
        return Event(encode_comment(OPENROUTER_COMMENT), EventKind.KEEPALIVE)
    return ctx.encoder.keepalive()


async def _quiet(
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


class _Tape:
    """The upstream's event batches as a fault reads them, able to hold the stream and then
    release what arrived during the hold with the gaps it arrived with.

    A fault that holds a stream (``slow_first_token``, ``stall`` with ``then: resume``) stops
    reading its upstream for the hold. Without this, whatever the upstream produced meanwhile
    waits in the simulator's schedule or a socket buffer and comes out in one burst when the
    hold ends: a 20 s first-token delay then showed the rest of the answer in 0 s, where every
    real provider shows 20 s plus the generation time. So from :meth:`hold` on, a task reads the
    upstream ahead, stamping each batch with its arrival time, and after :meth:`release` each
    batch is handed out at its arrival time shifted by the hold.

    Why re-timing what arrived rather than shifting the simulator's clock: it measures the wire,
    so it is right for any upstream (the simulator, a real provider, another lane forwarding a
    paced stream) and composes with other faults in a chain. The one difference from a provider
    that is itself slow: the upstream finishes its work on its own schedule, so a simulator's slot
    is held for its generation, not for the hold too.

    Before a hold it is a plain pass-through (no task, no queue: the per-event path stays lean).
    One hold per tape; the lane awaits :meth:`stop` (through ``ctx.cleanups``) before it closes
    the upstream, so the read-ahead task never outlives the response.
    """

    def __init__(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> None:
        self._events = events
        self._loop = asyncio.get_running_loop()
        self._arrived = 0.0  # loop time the last batch handed out arrived
        self._held_since: float | None = None
        self._shift: float | None = None  # set by release(): how late batches now are
        self._queue: asyncio.Queue[tuple[float, list[Event] | BaseException | None]] | None = None
        self._task: asyncio.Task[None] | None = None
        ctx.cleanups.append(self.stop)

    def __aiter__(self) -> _Tape:
        return self

    async def __anext__(self) -> list[Event]:
        if self._queue is None:
            batch = await self._events.__anext__()
            self._arrived = self._loop.time()
            return batch
        t, item = await self._queue.get()
        if item is None:
            self._queue.put_nowait((t, None))  # stays exhausted
            raise StopAsyncIteration
        if self._shift is not None:
            delay = t + self._shift - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        if isinstance(item, BaseException):
            raise item
        return item

    def hold(self) -> None:
        """The stream stops at the batch last handed out: start reading ahead."""
        if self._queue is not None:
            return
        self._held_since = self._arrived
        self._queue = asyncio.Queue()
        self._task = self._loop.create_task(self._read_ahead(self._queue))

    def release(self) -> None:
        """The hold is over: from now on batches come as late as the held one is."""
        if self._held_since is not None and self._shift is None:
            self._shift = max(0.0, self._loop.time() - self._held_since)

    async def _read_ahead(self, queue: asyncio.Queue[tuple[float, list[Event] | BaseException | None]]) -> None:
        try:
            async for batch in self._events:
                queue.put_nowait((self._loop.time(), batch))
        except Exception as exc:  # an upstream failure reaches the client when it happened, shifted
            queue.put_nowait((self._loop.time(), exc))
            return
        queue.put_nowait((self._loop.time(), None))

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])


@dataclass
class StreamFault(Fault):
    """Base of the stream family: acts on streamed answers only."""



# -- F14 ---------------------------------------------------------------------------------------
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
        return _keepalive_event(ctx, mode)

    async def after_headers(self, ctx: AttemptContext, status: int) -> None:
        if not ctx.request.stream and status < 400:
            await asyncio.sleep(self.s(ctx, self.delay))

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        held = False
        tape = _Tape(ctx, events)  # the tokens after the first keep the upstream's pace
        async for batch in tape:
            i = next((k for k, ev in enumerate(batch) if _carries_text(ev)), None) if not held else None
            if i is None:
                yield batch
                continue
            held = True
            tape.hold()
            if batch[:i]:
                yield batch[:i]
            async for ping in _quiet(ctx, self.s(ctx, self.delay), self._ping(ctx), self.s(ctx, self.ping_interval)):
                yield ping
            tape.release()
            yield batch[i:]


# -- F15 ---------------------------------------------------------------------------------------
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
        events = _follow(ctx, events)
        loop = asyncio.get_running_loop()
        rate = self._rate(ctx)
        sent = 0  # tokens before the collapse
        paced = 0  # tokens after it
        base: float | None = None  # when the collapse began
        async for batch in events:
            out: list[Event] = []
            for ev in batch:
                if not _carries_text(ev):
                    out.append(ev)
                    continue
                rest: Event | None = ev
                if base is None:
                    head, rest = _split(ctx, ev, self.after_tokens - sent)
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
                for one in _singles(ctx, rest):
                    paced += one.tokens or 1
                    delay = base + paced / rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    yield [one]
            if out:
                yield out


# -- F16 ---------------------------------------------------------------------------------------
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
        events = _follow(ctx, events)
        max_events, max_tokens = self.after_events, self.after_tokens
        n_events = n_tokens = 0
        async for batch in events:
            out: list[Event] = []
            cut = False
            for ev in batch:
                if max_events is not None and n_events >= max_events:
                    cut = True
                    break
                if max_tokens is not None and _carries_text(ev):
                    if n_tokens >= max_tokens:  # after_tokens: 0, the pre-content events are out
                        cut = True
                        break
                    head, _ = _split(ctx, ev, max_tokens - n_tokens)
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


# -- F17 / F18 ---------------------------------------------------------------------------------
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
            from ..proxy.hooks import ConnectionAction

            raise ConnectionAction(CloseMode.FIN, EndReason.CUT.value)

    async def _stall(self, ctx: AttemptContext) -> AsyncIterator[StreamItem]:
        ping = _keepalive_event(ctx, self.keepalive)
        async for item in _quiet(ctx, self._duration(ctx), ping, self.s(ctx, self.interval)):
            yield item
        if self.then == "cut":
            yield Close(CloseMode.FIN, EndReason.CUT.value)

    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        if self.in_tool_arguments:
            tape = _Tape(ctx, events)  # after a resume the rest keeps the upstream's pace
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
        events = _follow(ctx, events)
        sent = 0
        stalled = False
        tape = _Tape(ctx, events)  # after a resume the rest keeps the upstream's pace
        async for batch in tape:
            if stalled:
                yield batch
                continue
            out: list[Event] = []
            rest: list[Event] = []
            for ev in batch:
                if stalled:
                    rest.append(ev)
                elif _carries_text(ev) and sent < self.after_tokens:
                    head, tail = _split(ctx, ev, self.after_tokens - sent)
                    assert head is not None
                    out.append(head)
                    sent += head.tokens or 1
                    if tail is not None:
                        stalled = True
                        rest.append(tail)
                elif _carries_text(ev) or ev.kind in (EventKind.FINISH, EventKind.TERMINATOR):
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


# -- F19 / F20 ---------------------------------------------------------------------------------
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
        events = _follow(ctx, events)
        sent = 0
        async for batch in events:
            out: list[Event] = []
            hit = False
            for ev in batch:
                if _carries_text(ev) and sent < self.after_tokens:
                    head, _ = _split(ctx, ev, self.after_tokens - sent)
                    assert head is not None
                    out.append(head)
                    sent += head.tokens or 1
                    if sent >= self.after_tokens:
                        hit = True
                        break
                elif _carries_text(ev) or ev.kind in (EventKind.FINISH, EventKind.TERMINATOR):
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


# -- F21 ---------------------------------------------------------------------------------------
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


# -- F21 (bytes) -------------------------------------------------------------------------------


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

    return _DATA.sub(fix, data)


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


# -- F22 ---------------------------------------------------------------------------------------
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
        events = _follow(ctx, events)
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


# -- F23 ---------------------------------------------------------------------------------------
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
