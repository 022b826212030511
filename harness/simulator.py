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
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

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

__all__ = ["Capacity", "CapacityFull", "SimResponse", "SimSettings", "Simulator"]


@dataclass(frozen=True, slots=True)
class SimSettings:
    """How a simulated provider behaves. Times are seconds."""

    tokens_per_second: float = 60.0
    ttft: float = 0.05
    answer_tokens: int = 32
    slots: int | None = None  # concurrent generations; None = unlimited
    queue: int = 0  # calls allowed to wait for a slot; more get a capacity error
    max_events_per_second: float = 200.0
    capacity_error: ErrorKind = ErrorKind.QUEUE_FULL

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimSettings:
        known = {f for f in cls.__dataclass_fields__}
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

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings or SimSettings()
        self.capacity = Capacity(self.settings.slots, self.settings.queue)

    def completion_for(self, req: RequestInfo) -> Completion:
        """The canonical answer, cut at ``max_tokens`` (then finish is ``length``)."""
        return self._answer(req)

    def _answer(self, req: RequestInfo, *, text: bool = True) -> Completion:
        """The answer's size and finish; its text only when asked (a stream makes it as it goes)."""
        n = self.settings.answer_tokens
        finish = "stop"
        if req.max_tokens is not None and req.max_tokens < n:
            n, finish = req.max_tokens, "length"
        body = "".join(canonical_tokens(req.fingerprint, n)) if text else ""
        return Completion(text=body, usage=Usage(req.prompt_tokens, n), finish=finish)

    async def respond(self, req: RequestInfo, dialect: Dialect) -> SimResponse:
        """Answer ``req``; the slot is held until the stream (or the wait) is over."""
        try:
            queued = await self.capacity.acquire()
        except CapacityFull:
            r = dialect.render_error(ErrorSpec(self.settings.capacity_error, retry_after=1.0), req)
            return SimResponse(r.status, r.headers, body=r.body)
        try:
            completion = self._answer(req, text=not req.stream)
            if not req.stream:
                s = self.settings
                await asyncio.sleep(s.ttft + completion.usage.output_tokens / s.tokens_per_second)
                r: Rendered = dialect.render_completion(req, completion)
                self.capacity.release()
                return SimResponse(r.status, r.headers, body=r.body, completion=completion, queued=queued)
        except BaseException:
            self.capacity.release()
            raise
        enc = dialect.stream_encoder(req)
        return SimResponse(
            200,
            dialect.stream_headers(req),
            events=self._stream(enc, completion, iter_canonical_tokens(req.fingerprint)),
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
