"""Built-in providers: a deterministic simulator for every dialect.

The simulator answers each conversation with its canonical answer (``harness.canonical``), after a
time to first token, at a steady number of tokens per second, with usage; and it has a capacity
model: ``slots`` concurrent generations and a bounded ``queue`` of waiting calls. A call that
finds the queue full gets that dialect's capacity error at once, which is how a real saturated
provider answers.

Pacing is absolute: token *i* is due at ``start + ttft + i / tokens_per_second``, so a late
wake-up never accumulates into drift; tokens that are due together go out in one event. Events are
at most ``max_events_per_second`` per stream (tokens are grouped beyond that), as fast providers
do, so that 1000 tokens/s does not mean 1000 Python wake-ups per second per stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from itertools import islice
from typing import Any, NamedTuple

from .canonical import canonical_tokens, iter_canonical_tokens
from .dialects.base import (
    Completion,
    Dialect,
    ErrorKind,
    ErrorSpec,
    Event,
    Rendered,
    RequestInfo,
    StreamEncoder,
    Usage,
)
from .lanestate import LaneState
from .toolcalls import FRAGMENT_CHARS, ToolCall, ToolSpec, fragment_count, fragments, make_arguments

__all__ = ["SIM_RULES", "Capacity", "CapacityFull", "SimResponse", "SimRule", "SimSettings", "Simulator"]


class SimRule(NamedTuple):
    """What a simulator setting accepts. The profile loader, the JSON Schema and the docs all read
    these from :class:`SimSettings`' fields, so an editor's squiggle and the loader's
    ``file:line`` error agree."""

    types: tuple[type, ...]
    minimum: float | None
    exclusive: bool
    want: str
    doc: str


def _setting(default: Any, types: tuple[type, ...], minimum: float | None, exclusive: bool, want: str, doc: str) -> Any:
    return field(default=default, metadata={"rule": SimRule(types, minimum, exclusive, want, doc)})


@dataclass(frozen=True, slots=True)
class SimSettings:
    """How a simulated provider behaves. Times are seconds.

    When a request offers tools, the simulator follows a script: it answers ``tool_steps`` times
    with ``parallel_tool_calls`` tool calls (one when the request turns parallel calls off),
    whose arguments are about ``tool_arguments_chars`` of JSON valid for the tool's schema, and
    then, once the conversation holds the results of those steps, with its canonical answer.
    """

    tokens_per_second: float = _setting(
        60.0, (int, float), 0, True, "a number > 0", "generation speed once the answer starts"
    )
    ttft: float = _setting(
        0.05, (int, float), 0, False, "a number of seconds >= 0", "seconds from request to first token"
    )
    answer_tokens: int = _setting(32, (int,), 1, False, "an integer >= 1", "length of the canonical answer in tokens")
    slots: int | None = _setting(
        None,
        (int, type(None)),
        1,
        False,
        "an integer >= 1, or null for unlimited",
        "concurrent generations (null: unlimited)",
    )
    queue: int = _setting(
        0, (int,), 0, False, "an integer >= 0", "calls allowed to wait for a slot; more get capacity_error"
    )
    max_events_per_second: float = _setting(
        200.0, (int, float), 0, False, "a number >= 0 (0: one event per token)", "cap on stream events per second"
    )
    capacity_error: ErrorKind = _setting(  # noqa: RUF009 (an enum member: immutable)
        ErrorKind.QUEUE_FULL,
        (str,),
        None,
        False,
        "an error kind such as queue_full, overloaded, rate_limit",
        "error when slots and queue are full",
    )
    tool_steps: int = _setting(
        1,
        (int,),
        0,
        False,
        "an integer >= 0",
        "answers made of tool calls before the final answer, when the request offers tools",
    )
    parallel_tool_calls: int = _setting(
        1, (int,), 1, False, "an integer >= 1", "tool calls in each of those answers (1 if the request disables them)"
    )
    tool_arguments_chars: int = _setting(
        48,
        (int,),
        0,
        False,
        "an integer >= 0",
        "about how long each call's JSON arguments are (at least what the tool's schema needs)",
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimSettings:
        known = set(SIM_RULES)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
        data = dict(data)
        if "capacity_error" in data:
            data["capacity_error"] = ErrorKind(data["capacity_error"])
        return replace(cls(), **data)

    def scaled(self, time_scale: float) -> SimSettings:
        """Every duration multiplied by ``time_scale`` (rates divided), for compressed drills."""
        if time_scale == 1.0:
            return self
        return replace(
            self,
            ttft=self.ttft * time_scale,
            tokens_per_second=self.tokens_per_second / time_scale,
            max_events_per_second=self.max_events_per_second / time_scale,
        )


#: every setting's rule, by name, in declaration order
SIM_RULES: dict[str, SimRule] = {f.name: f.metadata["rule"] for f in fields(SimSettings)}


class CapacityFull(Exception):
    """No slot and no room in the queue."""


class Capacity:
    """``slots`` concurrent holders and at most ``queue`` waiters, first come first served.

    ``slots`` can shrink or grow while running (a concurrency cap that shrinks is a fault).
    """

    def __init__(self, slots: int | None, queue: int = 0) -> None:
        self.slots = slots
        self.queue = queue
        self.active = 0
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def resize(self, slots: int | None) -> None:
        self.slots = slots
        self._wake()

    async def acquire(self) -> float:
        """Take a slot, waiting in the queue if allowed; returns seconds spent queued."""
        if self.slots is None or (self.active < self.slots and not self._waiters):
            self.active += 1
            return 0.0
        if len(self._waiters) >= self.queue:
            raise CapacityFull
        t0 = time.monotonic()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut in self._waiters:
                self._waiters.remove(fut)
            elif fut.done() and not fut.cancelled():
                self.release()  # we were handed a slot just as we were cancelled
            raise
        return time.monotonic() - t0

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and (self.slots is None or self.active < self.slots):
            fut = self._waiters.pop(0)
            if not fut.done():
                self.active += 1
                fut.set_result(None)


@dataclass(slots=True)
class SimResponse:
    """What the simulator produced: a whole response, or a stream of event batches."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | None = None
    events: AsyncIterator[list[Event]] | None = None
    completion: Completion | None = None
    queued: float = 0.0
    encoder: StreamEncoder | None = None  # the stream's own encoder: faults continue its ids


class Simulator:
    """One simulated provider behind one lane (it speaks whatever dialect the request came in)."""

    def __init__(self, settings: SimSettings | None = None, *, lane: LaneState | None = None) -> None:
        self.settings = settings or SimSettings()
        self.capacity = Capacity(self.settings.slots, self.settings.queue)
        #: the lane's capabilities and the state it mints (harness.capabilities)
        self.lane = lane

    def completion_for(self, req: RequestInfo) -> Completion:
        """The canonical answer, cut at ``max_tokens`` (then finish is ``length``)."""
        return self._answer(req)

    def tool_calls_for(self, req: RequestInfo) -> tuple[ToolCall, ...]:
        """The script: tool calls while the conversation has had fewer than ``tool_steps`` rounds
        of them since its last user turn (always when the request forces a tool), none after.

        Call ``j`` of round ``k`` uses offered tool ``(k * n + j) mod len(tools)``, so every tool
        gets called in turn; ids and arguments derive from the conversation's fingerprint, so a
        retried step gets the same answer on any lane and in any dialect."""
        s = self.settings
        if not req.tools or req.tool_choice == "none":
            return ()
        if req.forced_tool is None and req.tool_choice != "required" and req.tool_rounds >= s.tool_steps:
            return ()
        specs: list[ToolSpec] = list(req.tools)
        n = s.parallel_tool_calls if req.parallel_tool_calls else 1
        if req.forced_tool is not None:
            specs = [t for t in specs if t.name == req.forced_tool] or [ToolSpec(req.forced_tool)]
            n = 1
        out = []
        for j in range(n):
            spec = specs[(req.tool_rounds * n + j) % len(specs)]
            key = hashlib.sha256(f"{req.fingerprint}:tool:{j}".encode()).hexdigest()
            out.append(ToolCall(key, spec.name, make_arguments(spec, key, s.tool_arguments_chars)))
        return tuple(out)

    def _tool_answer(self, req: RequestInfo, calls: tuple[ToolCall, ...]) -> Completion:
        """An answer made of tool calls: one token per argument fragment; ``max_tokens`` cuts the
        arguments where it falls (finish ``length``, later calls never made)."""
        budget = req.max_tokens
        kept: list[ToolCall] = []
        n = 0
        for c in calls:
            count = fragment_count(c.arguments)
            if budget is not None and n + count > budget:
                left = budget - n
                if left > 0:
                    kept.append(replace(c, arguments=c.arguments[: left * FRAGMENT_CHARS]))
                    n += left
                return Completion("", Usage(req.prompt_tokens, n), "length", tuple(kept))
            kept.append(c)
            n += count
        return Completion("", Usage(req.prompt_tokens, n), "stop", tuple(kept))

    def _answer(self, req: RequestInfo, *, text: bool = True, tools: bool = True) -> Completion:
        """The answer's size and finish; its text only when asked (a stream makes it as it goes)."""
        if tools and req.tools:
            calls = self.tool_calls_for(req)
            if calls:
                return self._tool_answer(req, calls)
        n = self.settings.answer_tokens
        finish = "stop"
        if req.max_tokens is not None and req.max_tokens < n:
            n, finish = req.max_tokens, "length"
        body = "".join(canonical_tokens(req.fingerprint, n)) if text else ""
        return Completion(text=body, usage=Usage(req.prompt_tokens, n), finish=finish)

    async def respond(
        self, req: RequestInfo, dialect: Dialect, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> SimResponse:
        """Answer ``req``; the slot is held until the stream (or the wait) is over. A lane with
        capabilities first admits the request (or rejects it as its provider would)."""
        asked = self.lane.admit(req, dialect, body) if self.lane is not None else None
        if isinstance(asked, Rendered):
            return SimResponse(asked.status, asked.headers, body=asked.body)
        try:
            queued = await self.capacity.acquire()
        except CapacityFull:
            r = dialect.render_error(ErrorSpec(self.settings.capacity_error, retry_after=1.0), req)
            return SimResponse(r.status, r.headers, body=r.body)
        try:
            completion = self._answer(req, text=not req.stream, tools=dialect.carries_tool_calls)
            if asked is not None and self.lane is not None:
                usage = self.lane.with_cache(asked, req, dialect, completion.usage, headers)
                completion = replace(completion, usage=usage)
            if not req.stream:
                s = self.settings
                await asyncio.sleep(s.ttft + completion.usage.output_tokens / s.tokens_per_second)
                r: Rendered = dialect.render_completion(req, completion)
                if asked is not None and self.lane is not None:
                    r = self.lane.stamp_body(asked, req, dialect, r, completion.usage.output_tokens)
                self.capacity.release()
                return SimResponse(r.status, r.headers, body=r.body, completion=completion, queued=queued)
        except BaseException:
            self.capacity.release()
            raise
        enc = dialect.stream_encoder(req)
        events = (
            self._tool_stream(enc, completion)
            if completion.tool_calls
            else self._stream(enc, completion, iter_canonical_tokens(req.fingerprint))
        )
        if asked is not None and self.lane is not None:
            events = self.lane.stamp_stream(asked, req, dialect, enc, events, completion.usage.output_tokens)
        return SimResponse(
            200,
            dialect.stream_headers(req),
            events=events,
            completion=completion,
            queued=queued,
            encoder=enc,
        )

    async def _stream(
        self, enc: StreamEncoder, completion: Completion, tokens: Iterator[str]
    ) -> AsyncIterator[list[Event]]:
        s = self.settings
        loop = asyncio.get_running_loop()
        try:
            start = loop.time()
            yield enc.start()
            per_token = 1.0 / s.tokens_per_second
            group = 1
            if s.max_events_per_second > 0:
                group = max(1, round(s.tokens_per_second / s.max_events_per_second))
            first_due = start + s.ttft
            i = 0
            n = completion.usage.output_tokens
            sent: list[str] = []
            while i < n:
                # the first token goes alone so time to first token is exact; then groups
                j = min(n, i + (group if i else 1))
                due = first_due + (j - 1) * per_token
                now = loop.time()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = loop.time()
                while j < n and first_due + j * per_token <= now:  # a late wake-up catches up
                    j += 1
                chunk = list(islice(tokens, j - i))
                sent += chunk
                yield [enc.content("".join(chunk), j - i)]
                i = j
            yield enc.finish(replace(completion, text="".join(sent)))
        finally:
            self.capacity.release()

    async def _tool_stream(self, enc: StreamEncoder, completion: Completion) -> AsyncIterator[list[Event]]:
        """A tool-call answer, paced like text: each argument fragment is a token. A call opens
        with its first fragment and closes with its last (a cut one only at the answer's end)."""
        s = self.settings
        calls = completion.tool_calls
        sizes = [fragment_count(c.arguments) for c in calls]
        cut = completion.finish == "length"
        loop = asyncio.get_running_loop()
        try:
            start = loop.time()
            yield enc.start(tool_calls=True)
            per_token = 1.0 / s.tokens_per_second
            group = max(1, round(s.tokens_per_second / s.max_events_per_second)) if s.max_events_per_second > 0 else 1
            first_due = start + s.ttft
            k = t = 0  # the call being written, and its fragments written so far
            i, n = 0, sum(sizes)
            while i < n:
                j = min(n, i + (group if i else 1))
                due = first_due + (j - 1) * per_token
                now = loop.time()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = loop.time()
                while j < n and first_due + j * per_token <= now:
                    j += 1
                batch: list[Event] = []
                todo = j - i
                while todo:
                    m = min(todo, sizes[k] - t)
                    if t == 0:
                        batch += enc.tool_call_start(k, calls[k])
                    batch += enc.tool_arguments(k, "".join(fragments(calls[k].arguments, t, m)), m)
                    t += m
                    todo -= m
                    if t == sizes[k] and not (cut and k == len(calls) - 1):
                        batch += enc.tool_call_end(k, calls[k])
                        k, t = k + 1, 0
                yield batch
                i = j
            tail = enc.tool_call_end(k, calls[k], complete=False) if cut and calls else []
            yield tail + enc.finish(completion)
        finally:
            self.capacity.release()
