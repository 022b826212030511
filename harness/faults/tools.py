"""Faults inside tool calls: the answer asks for a tool, and what it asks for is wrong.

Models really do this: arguments that are not JSON (a trailing comma, and the Anthropic SDK
raises "Unable to parse tool parameter JSON" mid-stream), arguments that miss a property the
schema requires, a call to a tool the request never offered. Gemini checks calls before it sends
them, so there the same faults arrive as the answer Gemini gives instead: no call, and
``finishReason: MALFORMED_FUNCTION_CALL`` or ``UNEXPECTED_TOOL_CALL``.

Each fault is one small class that says how it changes one call (``call``: which one of the
answer, 0 for the first); :class:`ToolCallFault` does the rest for every dialect and for the
simulator's answers as for a real upstream's. In a stream it holds the call's events from the
one that opens it to the one that ends it (a call's arguments must be whole to be changed), then
lets them go with the change written into them by the dialect (:meth:`Dialect.edit_tool_call`:
every id, index and sequence number stays the upstream's), and writes the change into later
events that repeat the call (Responses' ``response.completed``). A whole body is changed the
same way. An answer without that call goes through untouched.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..dialects.base import Event, EventKind, Usage
from ..proxy.hooks import AttemptContext, StreamItem
from ..toolcalls import ToolEdit, ToolSpec, fragment_count, fragments
from .base import Fault, FaultAttrError, attr, register

__all__ = [
    "InToolArguments",
    "MalformedToolArguments",
    "ToolCallFault",
    "ToolPoint",
    "UnofferedToolCall",
    "at_tool_arguments",
    "cut_body_in_tool_arguments",
    "cut_in_tool_arguments",
    "edited",
]


def edited(ctx: AttemptContext, ev: Event, edit: ToolEdit) -> Event:
    """``ev`` with ``edit`` written into its JSON by the attempt's dialect (itself when the event
    does not carry the call), classified again so the lane journals what really went out."""
    if not ev.tools and ev.kind not in (EventKind.TERMINATOR, EventKind.FINISH, EventKind.META):
        return ev
    dialect = ctx.dialect
    frames = dialect.stream_decoder().feed(ev.data)  # the dialect's own framing (SSE, NDJSON, frames)
    if len(frames) != 1:
        return ev
    obj = dialect.event_object(frames[0])
    if obj is None or not dialect.edit_tool_call(obj, edit):
        return ev
    data = dialect.encode_object(frames[0], obj)
    info = dialect.classify(dialect.stream_decoder().feed(data)[0])
    tokens = fragment_count(edit.fragment) if edit.fragment else ev.tokens
    return Event(data, info.kind, info.text, tokens, info.finish, info.usage, info.tools)


def _ends(ev: Event, index: int) -> bool:
    """The event ends call ``index``: its own end, the next call opening, or the answer's end."""
    for d in ev.tools:
        if d.done and d.index in (index, -1):
            return True
        if d.index != index and d.name is not None:
            return True
    return ev.kind in (EventKind.FINISH, EventKind.TERMINATOR, EventKind.ERROR)


def _spread(text: str, slots: int) -> list[str]:
    """``text`` in token-sized pieces over ``slots`` events, in order (the last takes the rest)."""
    if slots <= 0:
        return []
    pieces = fragments(text)
    per = max(1, -(-len(pieces) // slots))
    out = ["".join(pieces[i * per : (i + 1) * per]) for i in range(slots - 1)]
    return [*out, "".join(pieces[(slots - 1) * per :])]


@dataclass
class ToolCallFault(Fault):
    """Base of the tool-call faults: changes call number ``call`` of the answer."""

    call: int = attr(0, "which tool call of the answer (0: the first)")

    def validate(self) -> None:
        if self.call < 0:
            raise FaultAttrError("must be an integer >= 0", "call")

    def change(self, ctx: AttemptContext, name: str, arguments: str) -> ToolEdit | None:
        """The new name and arguments of the call (``index`` is filled in), or None to leave it."""
        raise NotImplementedError

    def _spec(self, ctx: AttemptContext, name: str) -> ToolSpec | None:
        return next((t for t in ctx.request.tools if t.name == name), None)

    # -- a whole body ---------------------------------------------------------------------------
    async def upstream_response(self, ctx: AttemptContext, response: Any) -> None:
        if response.events is not None or not response.body or response.status >= 400:
            return
        info = ctx.dialect.read_completion(response.body)
        if info is None or len(info.tools) <= self.call:
            return
        d = info.tools[self.call]
        edit = self.change(ctx, d.name or "", d.arguments)
        if edit is None:
            return
        obj = json.loads(response.body)
        edit = ToolEdit(self.call, edit.name, edit.arguments, None, edit.unexpected)
        if ctx.dialect.edit_tool_call(obj, edit, body=True):
            response.body = json.dumps(obj, ensure_ascii=False).encode()

    # -- a stream -------------------------------------------------------------------------------
    async def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:  # type: ignore[override]
        seen = 0  # calls opened so far
        opened: set[int] = set()  # some servers repeat a call's name on every chunk
        index: int | None = None  # the held call's index in the stream
        held: list[Event] = []
        after: ToolEdit | None = None  # the change, for later events that repeat the call
        async for batch in events:
            out: list[Event] = []
            for ev in batch:
                if after is not None:
                    ev = edited(ctx, ev, after)
                elif index is None and seen <= self.call:
                    seen, index = _opened(ev, seen, self.call, opened)
                if index is None:
                    out.append(ev)
                    continue
                held.append(ev)
                if _ends(ev, index):
                    released, after = self._release(ctx, held, index)
                    out += released
                    held, index = [], None
            if out:
                yield out
        if held and index is not None:
            released, _ = self._release(ctx, held, index)
            yield released

    def _release(self, ctx: AttemptContext, held: list[Event], index: int) -> tuple[list[Event], ToolEdit | None]:
        name = next((d.name for ev in held for d in ev.tools if d.index == index and d.name), "")
        args = "".join(d.arguments for ev in held for d in ev.tools if d.index == index)
        change = self.change(ctx, name, args)
        if change is None:
            return held, None
        # the events that carried fragments carry the new arguments' fragments, in order
        slots = [
            i for i, ev in enumerate(held) if any(d.index == index and d.name is None and d.arguments for d in ev.tools)
        ]
        pieces = (
            {} if change.arguments is None else dict(zip(slots, _spread(change.arguments, len(slots)), strict=True))
        )
        out = [
            edited(ctx, ev, ToolEdit(index, change.name, change.arguments, pieces.get(i), change.unexpected))
            for i, ev in enumerate(held)
        ]
        return out, ToolEdit(index, change.name, change.arguments, None, change.unexpected)


@register("malformed_tool_arguments")
@dataclass
class MalformedToolArguments(ToolCallFault):
    """A tool call whose arguments are wrong although the answer ended normally: ``kind:
    invalid_json`` (a trailing comma, which no JSON parser accepts) or ``missing_required`` (the
    first property the tool's schema requires is left out; a tool that requires none is left
    alone). Gemini never sends such a call: the answer ends with ``MALFORMED_FUNCTION_CALL``
    (invalid JSON) or carries the call without the property. Anthropic's whole bodies always
    carry an object, so invalid JSON there arrives as the empty ``input`` ``{}``.
    """

    kind: str = attr(
        "invalid_json",
        "invalid_json (not parseable) or missing_required (a required property left out)",
        ("invalid_json", "missing_required"),
    )

    def change(self, ctx: AttemptContext, name: str, arguments: str) -> ToolEdit | None:
        if self.kind == "invalid_json":
            text = arguments.rstrip()
            broken = text[:-1].rstrip() + ",}" if text.endswith("}") else text + ","
            return ToolEdit(0, None, broken)
        spec = self._spec(ctx, name)
        required = [r for r in ((spec.parameters or {}).get("required") or []) if isinstance(r, str)] if spec else []
        try:
            value = json.loads(arguments)
        except ValueError:
            return None
        if not required or not isinstance(value, dict) or required[0] not in value:
            return None
        del value[required[0]]
        return ToolEdit(0, None, json.dumps(value, ensure_ascii=False))


@register("unoffered_tool_call")
@dataclass
class UnofferedToolCall(ToolCallFault):
    """A call to a tool the request never offered (``tool``; a hallucinated ``run_shell`` by
    default), with the arguments the model meant for the real one. An agent must refuse it, not
    dispatch it or crash. Gemini refuses it itself: no call, ``finishReason:
    UNEXPECTED_TOOL_CALL``.
    """

    tool: str = attr("run_shell", "the name of the tool called (it must not be one the request offers)")

    def change(self, ctx: AttemptContext, name: str, arguments: str) -> ToolEdit | None:
        if self._spec(ctx, self.tool) is not None:
            return None  # offered after all: not this fault
        return ToolEdit(0, self.tool, None, None, unexpected=True)


# -- a point inside a call's arguments, for stream_cut, stall and finish_length ---------------------
class ToolPoint:
    """Yielded once by :func:`at_tool_arguments`, where the point is; ``index`` is the call's
    index in the stream, ``arguments`` what went out of its arguments before it."""

    __slots__ = ("arguments", "index")

    def __init__(self, index: int, arguments: str) -> None:
        self.index = index
        self.arguments = arguments

    @property
    def sent(self) -> int:
        return len(self.arguments)


class _Cursor:
    """Walks one call's events up to ``want`` characters of its arguments."""

    def __init__(self, ctx: AttemptContext, index: int, want: int) -> None:
        self.ctx, self.index, self.want, self.sent = ctx, index, want, 0
        self.parts: list[str] = []

    def step(self, ev: Event) -> tuple[list[Event], list[Event] | None]:
        """What goes out before the point, and (once it is reached) what comes after it."""
        i = self.index
        frag = next((d.arguments for d in ev.tools if d.index == i and d.name is None and d.arguments), None)
        if frag is None:
            if any(d.index == i and d.name is not None for d in ev.tools):  # the call opens here
                return [ev], ([] if self.sent >= self.want else None)
            if self.sent >= self.want or _ends(ev, i):
                return [], [ev]  # the end of the call (or later) waits behind the point
            return [ev], None
        left = self.want - self.sent
        if left >= len(frag):
            self.sent += len(frag)
            self.parts.append(frag)
            return [ev], ([] if self.sent >= self.want else None)
        self.sent = self.want
        self.parts.append(frag[:left])
        head = edited(self.ctx, ev, ToolEdit(i, fragment=frag[:left])) if left > 0 else None
        tail = edited(self.ctx, ev, ToolEdit(i, fragment=frag[left:]))
        return ([head] if head is not None else []), [tail]


async def at_tool_arguments(
    ctx: AttemptContext, events: AsyncIterator[list[Event]], fraction: float, call: int = 0
) -> AsyncIterator[list[Event] | ToolPoint]:
    """``events`` with one :class:`ToolPoint` yielded ``fraction`` of the way through call number
    ``call``'s arguments (0: right after it opens; 1: after its last fragment, before its end).

    The fragment event the point falls inside is split there (the dialect writes both halves,
    with the upstream's ids). When the length of the arguments is known in advance (the
    simulator's opening delta says it) events go out as they come; otherwise the call's events
    are held until it ends, then let go up to the point. A call that comes whole (Gemini) cannot
    be cut inside: the point is before it (after it for ``fraction`` 1). An answer without that
    call yields no point."""
    seen, opened = 0, set()
    cur: _Cursor | None = None
    held: list[Event] | None = None
    index = -1
    done = False
    async for batch in events:
        if done:
            yield batch
            continue
        out: list[Event] = []
        for k, ev in enumerate(batch):
            if cur is None and held is None:
                seen, found = _opened(ev, seen, call, opened)
                if found is None:
                    out.append(ev)
                    continue
                index = found
                d = next(d for d in ev.tools if d.index == index and d.name is not None)
                if d.done and d.arguments:  # a whole call
                    after = fraction >= 1
                    if after:
                        out.append(ev)
                    if out:
                        yield out
                    yield ToolPoint(index, d.arguments if after else "")
                    rest = batch[k + 1 :] if after else batch[k:]
                    if rest:
                        yield rest
                    done = True
                    break
                if d.total is not None:
                    cur = _Cursor(ctx, index, round(fraction * d.total))
                else:
                    held = []
            if held is not None:
                held.append(ev)
                if len(held) == 1 or not _ends(ev, index):
                    continue
                total = sum(len(d.arguments) for e in held for d in e.tools if d.index == index and d.name is None)
                cur, replay, held = _Cursor(ctx, index, round(fraction * total)), held, None
                for j, hev in enumerate(replay):
                    before, after_point = cur.step(hev)
                    out += before
                    if after_point is not None:
                        rest = after_point + replay[j + 1 :] + batch[k + 1 :]
                        break
                else:  # pragma: no cover - the call's end always reaches the point
                    continue
            else:
                assert cur is not None
                before, after_point = cur.step(ev)
                out += before
                if after_point is None:
                    continue
                rest = after_point + batch[k + 1 :]
            if out:
                yield out
            yield ToolPoint(index, "".join(cur.parts))
            if rest:
                yield rest
            done = True
            break
        else:
            if out:
                yield out
    if held:
        yield held  # the stream ended inside a call of unknown length: it goes out as it came


def _opened(ev: Event, seen: int, call: int, opened: set[int]) -> tuple[int, int | None]:
    """Calls opened by ``ev``: the new count, and the target call's index if it opened here."""
    for d in ev.tools:
        if d.index >= 0 and d.name is not None and (d.index not in opened or d.done):
            opened.add(d.index)
            if seen == call:
                return seen + 1, d.index
            seen += 1
    return seen, None


async def cut_in_tool_arguments(
    ctx: AttemptContext, events: AsyncIterator[list[Event]], fraction: float, call: int = 0
) -> AsyncIterator[list[Event]]:
    """``events`` ended by the token limit ``fraction`` of the way through call number ``call``'s
    arguments: what went out before the point, then the dialect's length finish and terminator
    (Chat ``finish_reason: length``, Responses ``response.incomplete`` with the call's item
    incomplete, Anthropic ``stop_reason: max_tokens``, Gemini ``MAX_TOKENS`` without the call).
    An answer without that call goes through whole."""
    enc = ctx.encoder
    tokens = 0
    async for item in at_tool_arguments(ctx, events, fraction, call):
        if isinstance(item, ToolPoint):
            ctx.attempt.finish = "length"
            yield enc.cut_tool_call(item.index, item.arguments, Usage(ctx.request.prompt_tokens, tokens))
            return
        for ev in item:
            enc.observe(ev)
            tokens += ev.tokens
        yield item


def cut_body_in_tool_arguments(ctx: AttemptContext, response: Any, fraction: float, call: int = 0) -> None:
    """The same for a whole body: call number ``call``'s arguments cut at ``fraction``, the calls
    after it gone, the finish the dialect's length finish."""
    if response.events is not None or not response.body or response.status >= 400:
        return
    info = ctx.dialect.read_completion(response.body)
    if info is None or len(info.tools) <= call:
        return
    args = info.tools[call].arguments
    obj = json.loads(response.body)
    if ctx.dialect.edit_tool_call(
        obj, ToolEdit(call, arguments=args[: round(fraction * len(args))], cut=True), body=True
    ):
        response.body = json.dumps(obj, ensure_ascii=False).encode()
        ctx.attempt.finish = "length"


# -- the position attributes stream_cut, stall and finish_length share ---------------------------
@dataclass
class InToolArguments:
    """Where a stream fault acts: among the answer's tokens (``after_tokens``, the default), or
    with ``in: tool_arguments`` inside a tool call's arguments, ``after_fraction`` of the way
    through call number ``call``. An answer without that call goes through untouched."""

    in_: str | None = attr(
        None, "answer (default: among the answer's tokens) or tool_arguments", ("answer", "tool_arguments"), key="in"
    )
    after_fraction: float | None = attr(None, "with in: tool_arguments, how far through the arguments (0-1; 0.5)")
    call: int | None = attr(None, "with in: tool_arguments, which tool call of the answer (0: the first)")

    @property
    def in_tool_arguments(self) -> bool:
        return self.in_ == "tool_arguments"

    @property
    def fraction(self) -> float:
        return 0.5 if self.after_fraction is None else self.after_fraction

    def validate_position(self) -> None:
        if self.after_fraction is not None and not 0.0 <= self.after_fraction <= 1.0:
            raise FaultAttrError("must be a number from 0 to 1", "after_fraction")
        if self.call is not None and self.call < 0:
            raise FaultAttrError("must be an integer >= 0", "call")
        if not self.in_tool_arguments and (self.after_fraction is not None or self.call is not None):
            raise FaultAttrError("after_fraction and call place a fault in a tool call: add in: tool_arguments", "in")

    def at_point(
        self, ctx: AttemptContext, events: AsyncIterator[list[Event]]
    ) -> AsyncIterator[list[Event] | ToolPoint]:
        return at_tool_arguments(ctx, events, self.fraction, self.call or 0)
