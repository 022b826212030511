"""Faults of the capacity family: rate limiters and concurrency caps with real state.

Unlike the ``rate_limit`` fault of :mod:`harness.faults.http` (which answers 429 when its
schedule says, with made-up counters), these faults *are* the limit: a token bucket or a slot
count that every attempt on the lane goes through, so a client that paces itself well is never
refused, a client that hammers is refused exactly as often as its excess, and every number the
lane sends (``x-ratelimit-remaining-*``, ``Retry-After``) is true at the instant it is sent
(reference: provider-wire-formats.md F01, F02, F04, F30, F31, F32).

Both faults are asked for every attempt through :meth:`~harness.faults.base.Fault.select`. When
their schedule is off they do nothing at all: the attempt is neither counted nor capped (a
schedule such as ``{window: [10, 30]}`` means "the lane has this limit from 10 s to 30 s").

State and lanes
---------------
The plan builds one fault object per profile entry, and ``lane: "*"`` applies one entry to
every lane. State therefore lives *inside* the fault object, keyed by lane name: each lane gets
its own bucket (or its own slots), also under ``lane: "*"``, because separate deployments have
separate quotas. Two entries on the same lane are two independent limits (both must admit).

``shared: NAME`` (F31, rate_limiter only) puts every lane of every entry naming ``NAME`` on one
bucket: two "independent" deployments behind one org key. Shared buckets live in a registry
scoped to the drill: the dict the plan passes as ``ctx.extra["shared_state"]`` when it does, and
otherwise one registry per event loop (every :class:`~harness.lanes.BackgroundLanes` drill has
its own loop, so drills never see each other's buckets). The first entry to use a shared name
creates the bucket with its limits; entries that share a name should give the same limits.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import math
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..dialects.base import ErrorKind, ErrorSpec, RateLimitSnapshot, Rendered, go_duration, rfc3339
from ..proxy.hooks import AttemptContext, Intervention
from ..ratelimit import Decision, RateLimiter, Ticket
from .base import Fault, FaultAttrError, attr, register, seconds

__all__ = ["ConcurrencyCap", "RateLimiterFault", "broken_ratelimit_headers"]

_OPENAI_DIALECTS = frozenset({"openai-chat", "openai-responses"})
_KINDS = ("rate_limit", "slow_down", "queue_full")

#: shared buckets per event loop, when the plan does not provide ``ctx.extra["shared_state"]``
_SHARED_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = weakref.WeakKeyDictionary()
_SHARED_NO_LOOP: dict[str, Any] = {}


def _shared_registry(ctx: AttemptContext) -> dict[str, Any]:
    """The drill-scoped registry for ``shared:`` buckets (see the module docstring)."""
    reg = ctx.extra.get("shared_state")
    if isinstance(reg, dict):
        return reg
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _SHARED_NO_LOOP
    return _SHARED_BY_LOOP.setdefault(loop, {})


def _advertised(wait: float) -> float:
    """A wait as a ``Retry-After`` value that is never shorter than the truth: milliseconds
    rounded up (the SDKs parse float seconds), whole seconds rounded up beyond 100 s (where the
    header's ``%g`` formatting would start dropping digits)."""
    if wait >= 100:
        return float(math.ceil(wait))
    return max(0.001, math.ceil(wait * 1000 - 1e-6) / 1000)


def broken_ratelimit_headers(dialect: str, snap: RateLimitSnapshot) -> list[tuple[str, str]]:
    """F32: rate-limit metadata a client must survive.

    OpenAI dialects get Azure's form (openai-dotnet #838): every limit ``-1``, remaining ``0``,
    reset ``0``. Anthropic gets its headers with every reset instant a minute in the *past* (and
    remaining ``0``). Gemini sends no rate-limit headers anyway.
    """
    out: list[tuple[str, str]] = []
    if dialect in _OPENAI_DIALECTS:
        for unit in ("requests", "tokens"):
            out += [
                (f"x-ratelimit-limit-{unit}", "-1"),
                (f"x-ratelimit-remaining-{unit}", "0"),
                (f"x-ratelimit-reset-{unit}", "0"),
            ]
    elif dialect == "anthropic":
        now = _dt.datetime.now(_dt.UTC)
        for attr_, unit in (
            ("requests", "requests"),
            ("tokens", "tokens"),
            ("input_tokens", "input-tokens"),
            ("output_tokens", "output-tokens"),
        ):
            limit = getattr(snap, f"{attr_}_limit")
            if limit is None:
                continue
            prefix = f"anthropic-ratelimit-{unit}"
            past = rfc3339(-60.0, now)
            out += [(f"{prefix}-limit", str(limit)), (f"{prefix}-remaining", "0"), (f"{prefix}-reset", past)]
    return out


# -- rate_limiter ---------------------------------------------------------------------------


@register("rate_limiter")
@dataclass
class RateLimiterFault(Fault):
    """F01/F02/F04/F30/F31/F32: a real token-bucket limit on the lane.

    Every attempt while the schedule is on goes through the lane's buckets (requests, tokens,
    input and output tokens per minute, concurrent requests; see :mod:`harness.ratelimit`).
    Admitted attempts pass through untouched except for truthful rate-limit headers in the
    dialect's format, and are not journaled as faulted; refused ones get the provider's 429 (or
    ``slow_down`` / ``queue_full`` per ``kind``) with ``retry-after`` equal to the real time until
    the same request would be admitted. Limits are "per minute" of drill time: at ``time_scale:
    0.1`` a minute lasts 6 real seconds, and the ``retry-after`` sent is in real seconds.

    A refusal by the concurrency limit alone carries no ``retry-after``: when a slot frees
    depends on other attempts, and a made-up number would be exactly what this fault exists to
    avoid. ``retry_after: false`` drops the header for every refusal (F02); ``headers: false``
    sends no rate-limit headers at all, ``headers: broken`` sends inconsistent ones (F32, see
    :func:`broken_ratelimit_headers`). Azure's Responses quirk is ``headers: broken`` with
    ``retry_after: false``.

    Only refusals count as the fault applied (the journal's ``fault``, and a schedule's
    ``max:``), since an admitted attempt is what the lane would do anyway.
    """


    requests_per_minute: int | None = attr(None, "requests admitted per minute")
    tokens_per_minute: int | None = attr(None, "prompt plus completion tokens per minute")
    input_tokens_per_minute: int | None = attr(None, "prompt tokens per minute (Anthropic ITPM)")
    output_tokens_per_minute: int | None = attr(None, "completion tokens per minute (Anthropic OTPM)")
    concurrent: int | None = attr(None, "requests in flight at once")
    retry_after: bool = attr(True, "send retry-after (the truthful wait) on a refusal")
    headers: bool | str = attr(True, "rate-limit headers: true, false, or broken (F32)", ("broken",))
    shared: str | None = attr(None, "lanes naming the same shared bucket share one quota (F31)")
    kind: str = attr("rate_limit", "the refusal: rate_limit, slow_down or queue_full", _KINDS)

    def __post_init__(self) -> None:
        self._limiters: dict[str, RateLimiter] = {}

    def validate(self) -> None:
        limits = (
            "requests_per_minute",
            "tokens_per_minute",
            "input_tokens_per_minute",
            "output_tokens_per_minute",
            "concurrent",
        )
        for name in limits:
            v = getattr(self, name)
            if v is not None and v < 1:
                raise FaultAttrError(f"must be at least 1 (got {v})", name)
        if all(getattr(self, n) is None for n in limits):
            raise FaultAttrError(f"give at least one limit: {', '.join(limits)}", "requests_per_minute")
        if isinstance(self.headers, str) and self.headers != "broken":
            raise FaultAttrError(f"must be true, false or broken (got {self.headers!r})", "headers")
        if self.kind not in _KINDS:
            raise FaultAttrError(f"must be one of {', '.join(_KINDS)} (got {self.kind!r})", "kind")

    def limiter(self, ctx: AttemptContext) -> RateLimiter:
        """The bucket this attempt goes through: its lane's, or the shared one."""
        if self.shared is not None:
            reg = _shared_registry(ctx)
            key = f"rate_limiter:{self.shared}"
            if key not in reg:
                reg[key] = self._new_limiter(ctx)
            return reg[key]  # type: ignore[no-any-return]
        lim = self._limiters.get(ctx.lane)
        if lim is None:
            lim = self._limiters[ctx.lane] = self._new_limiter(ctx)
        return lim

    def _new_limiter(self, ctx: AttemptContext) -> RateLimiter:
        return RateLimiter(
            requests_per_minute=self.requests_per_minute,
            tokens_per_minute=self.tokens_per_minute,
            input_tokens_per_minute=self.input_tokens_per_minute,
            output_tokens_per_minute=self.output_tokens_per_minute,
            concurrent=self.concurrent,
            period=self.s(ctx, 60.0) or 60.0,
        )

    def select(self, ctx: AttemptContext, scheduled: bool) -> Intervention | None:
        if not scheduled:
            return None
        lim = self.limiter(ctx)
        d = lim.try_acquire(ctx.request.prompt_tokens)
        if d.admitted:
            assert d.ticket is not None
            return _Admitted(self, lim, d.ticket)
        return _Refused(self, lim, d)

    def header_list(self, ctx: AttemptContext, snap: RateLimitSnapshot) -> list[tuple[str, str]]:
        """Rate-limit headers for ``snap`` as this fault is told to send them."""
        if self.headers is False:
            return []
        if self.headers == "broken":
            return broken_ratelimit_headers(ctx.dialect.name, snap)
        return ctx.dialect.ratelimit_headers(snap)

    async def before(self, ctx: AttemptContext) -> Rendered | None:  # pragma: no cover - select() decides
        return None


class _Admitted(Intervention):
    """An admitted attempt: decorate its answer with the counters, charge it when it ends."""

    is_fault = False

    def __init__(self, fault: RateLimiterFault, limiter: RateLimiter, ticket: Ticket) -> None:
        self.name = fault.name
        self.fault = fault
        self.limiter = limiter
        self.ticket = ticket

    def describe(self) -> dict[str, Any]:
        return {"name": None}

    def response_headers(self, ctx: AttemptContext, status: int) -> list[tuple[str, str]]:
        return self.fault.header_list(ctx, self.limiter.snapshot())

    def finished(self, ctx: AttemptContext) -> None:
        self.limiter.release(self.ticket, ctx.attempt.tokens)


class _Refused(Intervention):
    """A refused attempt: the provider's 429 with the truthful wait and counters."""

    is_fault = True

    def __init__(self, fault: RateLimiterFault, limiter: RateLimiter, decision: Decision) -> None:
        self.name = fault.name
        self.fault = fault
        self.limiter = limiter
        self.decision = decision
        self.wait = _advertised(decision.wait) if decision.wait is not None else None

    def describe(self) -> dict[str, Any]:
        d = self.fault.describe()
        d["limit"] = self.decision.limited_by
        if self.wait is not None:
            d["wait"] = self.wait
        return d

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        f = self.fault
        ra = self.wait if f.retry_after else None
        kind = ErrorKind(f.kind)
        spec = ErrorSpec(kind, message=self._message(ctx, kind), retry_after=ra)
        if ra is not None:
            ctx.attempt.retry_after = ra
        rendered = ctx.dialect.render_error(spec, ctx.request)
        if kind is ErrorKind.RATE_LIMIT and ctx.dialect.name in _OPENAI_DIALECTS:
            rendered = _openai_error_type(rendered, self.decision.limited_by)
        return rendered

    def response_headers(self, ctx: AttemptContext, status: int) -> list[tuple[str, str]]:
        return self.fault.header_list(ctx, self.limiter.snapshot())

    def _message(self, ctx: AttemptContext, kind: ErrorKind) -> str | None:
        """The provider's words for a rate limit, with the true numbers (other kinds keep the
        dialect's standard message)."""
        d = self.decision
        if kind is not ErrorKind.RATE_LIMIT or d.limited_by is None:
            return None
        model = ctx.request.model or "the model"
        name = ctx.dialect.name
        if name in _OPENAI_DIALECTS and getattr(ctx.dialect, "variant", "openai") == "openai":  # not Azure, OpenRouter
            if d.limited_by == "concurrent":
                return f"Rate limit reached for {model} in organization org-routechaos: too many concurrent requests."
            unit = "requests per min (RPM)" if d.limited_by == "requests" else "tokens per min (TPM)"
            again = f" Please try again in {go_duration(self.wait)}." if self.wait is not None else ""
            return (
                f"Rate limit reached for {model} in organization org-routechaos on {unit}: "
                f"Limit {d.limit}, Used {d.used}, Requested {d.requested}.{again} "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            )
        if name == "anthropic":
            what = {
                "requests": "requests per minute",
                "tokens": "tokens per minute",
                "input_tokens": "input tokens per minute",
                "output_tokens": "output tokens per minute",
                "concurrent": "concurrent requests",
            }[d.limited_by]
            return (
                f"This request would exceed the rate limit for your organization of {d.limit:,} {what}. "
                "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response "
                "headers for current usage. Please reduce the prompt length or the maximum tokens requested, "
                "or try again later."
            )
        return None


def _openai_error_type(r: Rendered, limited_by: str | None) -> Rendered:
    """OpenAI says which limit ran out in ``error.type``: ``requests`` or ``tokens`` (F01/F02)."""
    if limited_by not in ("tokens", "input_tokens", "output_tokens"):
        return r
    try:
        body = json.loads(r.body)
    except ValueError:
        return r
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or err.get("type") != "requests":
        return r
    err["type"] = "tokens"
    return Rendered(r.status, r.headers, json.dumps(body).encode())


# -- concurrency_cap ------------------------------------------------------------------------


class _Slots:
    """Slots and a FIFO queue for one lane, decided synchronously.

    Unlike :class:`harness.simulator.Capacity` (whose ``acquire`` is a coroutine), taking a
    slot or a place in the queue happens in :meth:`ConcurrencyCap.select`, before the attempt is
    journaled: whether an attempt is capped must be known when the plan decides, so the journal
    records the fault on exactly the attempts it touched. Only the wait itself is async.

    The cap in force depends on drill time (``shrink_to`` after ``shrink_after``); it is read at
    each admission and release, so a shrink never needs a timer: holders keep their slots, and
    no one new gets in until the lane is under the smaller cap.
    """

    def __init__(self, slots: int, queue: int, shrink_to: int | None, shrink_at: float | None, t0: float) -> None:
        self.slots = slots
        self.queue = queue
        self.shrink_to = shrink_to
        self.shrink_at = shrink_at
        self.t0 = t0  # time.monotonic() at drill time 0
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def cap(self) -> int:
        if self.shrink_to is not None and self.shrink_at is not None and time.monotonic() - self.t0 >= self.shrink_at:
            return self.shrink_to
        return self.slots

    def try_take(self) -> bool:
        if self.active < self.cap() and not self.waiters:
            self.active += 1
            return True
        return False

    def enqueue(self) -> asyncio.Future[None] | None:
        if len(self.waiters) >= self.queue:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        return fut

    def abandon(self, fut: asyncio.Future[None]) -> None:
        """A waiter gave up (timeout, client gone): leave the queue, or hand back a slot it was
        granted at the same moment."""
        if fut in self.waiters:
            self.waiters.remove(fut)
        elif fut.done() and not fut.cancelled():
            self.release()

    def release(self) -> None:
        self.active = max(0, self.active - 1)
        cap = self.cap()
        while self.waiters and self.active < cap:
            fut = self.waiters.popleft()
            if not fut.done():
                self.active += 1
                fut.set_result(None)


@register("concurrency_cap")
@dataclass
class ConcurrencyCap(Fault):
    """F30: the lane admits ``slots`` concurrent requests; up to ``queue`` more wait (their
    response headers are late by the wait, as on a saturated premium lane, F13), and beyond
    that the lane answers its capacity error at once (``error``, default ``queue_full``: OpenAI
    429 ``rate_limit_exceeded``, Anthropic 529 ``overloaded_error``, Ollama 503 "server busy",
    Gemini 503 ``UNAVAILABLE``). A waiter that is still queued after ``queue_timeout`` seconds
    gets the same error. A slot is held from admission until the attempt ends, however it ends
    (complete, cut, client gone).

    "A concurrency cap that shrinks": with ``shrink_to`` and ``shrink_after``, the cap drops to
    ``shrink_to`` at that drill time; attempts already holding slots keep them, new ones wait
    until the lane is under the new cap.

    Attempts admitted at once are not journaled as faulted; queued and refused ones are
    (``queued: true`` in the fault record; ``queue_timeout: true`` when the wait ran out).
    """


    slots: int = attr(1, "concurrent requests admitted")
    queue: int = attr(0, "requests that may wait for a slot; more get the error at once")
    queue_timeout: float | None = seconds(None, "seconds a request may wait in the queue (null: forever)")
    error: str = attr("queue_full", "the error kind on overflow", tuple(k.value for k in ErrorKind))
    shrink_to: int | None = attr(None, "the cap after shrink_after seconds")
    shrink_after: float | None = seconds(None, "drill time at which the cap shrinks to shrink_to")

    def __post_init__(self) -> None:
        self._lanes: dict[str, _Slots] = {}

    def validate(self) -> None:
        if self.slots < 0:
            raise FaultAttrError(f"must be 0 or more (got {self.slots})", "slots")
        if self.queue < 0:
            raise FaultAttrError(f"must be 0 or more (got {self.queue})", "queue")
        if self.queue_timeout is not None and self.queue_timeout < 0:
            raise FaultAttrError("must be 0 or more seconds", "queue_timeout")
        if (self.shrink_to is None) != (self.shrink_after is None):
            raise FaultAttrError("shrink_to and shrink_after go together", "shrink_to")
        if self.shrink_to is not None and self.shrink_to < 0:
            raise FaultAttrError(f"must be 0 or more (got {self.shrink_to})", "shrink_to")
        try:
            ErrorKind(self.error)
        except ValueError:
            raise FaultAttrError(f"unknown error kind {self.error!r}", "error") from None

    def slots_for(self, ctx: AttemptContext) -> _Slots:
        s = self._lanes.get(ctx.lane)
        if s is None:
            shrink_at = self.s(ctx, self.shrink_after) if self.shrink_after is not None else None
            t0 = time.monotonic() - ctx.attempt.t_start  # drill time 0 on the monotonic clock
            s = self._lanes[ctx.lane] = _Slots(self.slots, self.queue, self.shrink_to, shrink_at, t0)
        return s

    def select(self, ctx: AttemptContext, scheduled: bool) -> Intervention | None:
        if not scheduled:
            return None
        slots = self.slots_for(ctx)
        if slots.try_take():
            return _Slot(self, slots, None, "admitted")
        fut = slots.enqueue()
        return _Slot(self, slots, fut, "queued" if fut is not None else "overflow")

    async def before(self, ctx: AttemptContext) -> Rendered | None:  # pragma: no cover - select() decides
        return None


class _Slot(Intervention):
    """One attempt's place under a :class:`ConcurrencyCap`."""

    def __init__(self, fault: ConcurrencyCap, slots: _Slots, fut: asyncio.Future[None] | None, state: str) -> None:
        self.name = fault.name
        self.fault = fault
        self.lane_slots = slots
        self.fut = fut
        self.state = state  # admitted | queued | overflow | timeout
        self.holding = state == "admitted"
        self.is_fault = state != "admitted"

    def describe(self) -> dict[str, Any]:
        if self.state == "admitted":
            return {"name": None}
        d = self.fault.describe()
        d["queued" if self.state == "queued" else "overflow"] = True
        return d

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        if self.state == "overflow":
            return self._error(ctx)
        if self.fut is None:
            return None
        timeout = self.fault.s(ctx, self.fault.queue_timeout) if self.fault.queue_timeout is not None else None
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(self.fut, timeout)
        except TimeoutError:
            self.lane_slots.abandon(self.fut)
            self.fut = None
            self.state = "timeout"
            ctx.attempt.fault = dict(self.describe(), queue_timeout=True)
            return self._error(ctx)
        except BaseException:
            self.lane_slots.abandon(self.fut)
            self.fut = None
            raise
        self.fut = None
        self.holding = True
        ctx.extra["queued"] = time.monotonic() - t0
        return None

    def _error(self, ctx: AttemptContext) -> Rendered:
        return ctx.dialect.render_error(ErrorSpec(ErrorKind(self.fault.error)), ctx.request)

    def finished(self, ctx: AttemptContext) -> None:
        if self.fut is not None:  # still queued: the attempt ended before before() ran
            self.lane_slots.abandon(self.fut)
            self.fut = None
        if self.holding:
            self.holding = False
            self.lane_slots.release()
