"""A provider-style rate limiter as pure code: token buckets per minute, plus a concurrency cap.

Real providers meter a key with several buckets at once (requests per minute, tokens per minute,
on Anthropic input and output tokens apart) and tell the client, on every response, how much is
left and when each bucket is full again. A chaos harness is only useful if those numbers are
*true*: a client that derives its pacing from ``x-ratelimit-remaining-*`` or waits exactly the
``Retry-After`` it was given must be admitted when it comes back, and must be refused when it
comes back early. So this module answers three questions from one state, at any instant of an
injectable :class:`~harness.clock.Clock`:

* may this request go now? (:meth:`RateLimiter.try_acquire`)
* if not, how long until it would be admitted? (:attr:`Decision.wait`, the ``Retry-After``)
* what would the headers say right now? (:meth:`RateLimiter.snapshot`)

Buckets refill continuously (``limit / period`` per second, like the providers' own docs
describe "replenished continuously", not a fixed window that resets at the minute), so a client
that reads ``remaining`` and ``reset`` twice a second sees them move smoothly.

Token accounting: prompt tokens are charged at admission (they are known from the request);
completion tokens are charged when the attempt ends (:meth:`RateLimiter.release`), because only
then are they known. Charging may push a bucket below zero: the tokens were really used, and the
debt is repaid by refill before anything else is admitted, which is how a burst of long answers
throttles the next requests on a real provider.

A request that costs more than a bucket's whole limit would never be admitted if it had to fit;
it is admitted when that bucket is full and leaves it in debt (a real provider answers "request
too large"; that is a different fault, not a rate limit).

Nothing here sleeps, reads the wall clock or touches a socket; tests drive it with
:class:`~harness.clock.VirtualClock`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .clock import Clock, MonotonicClock
from .dialects.base import RateLimitSnapshot

__all__ = ["Bucket", "Decision", "RateLimiter", "Ticket"]

#: float slack when comparing a refilled level with what a request needs: advancing a clock by
#: exactly the advertised wait must admit, whatever rounding the refill arithmetic did
EPS = 1e-9


@dataclass(slots=True)
class Bucket:
    """One continuously refilling bucket: ``limit`` units per ``period`` seconds.

    ``level`` may be negative (debt from completion tokens charged after the fact).
    """

    limit: int
    period: float
    level: float
    t: float  # clock time ``level`` was last brought up to date

    @property
    def rate(self) -> float:
        """Units refilled per second."""
        return self.limit / self.period

    def refill(self, now: float) -> None:
        if now > self.t:
            self.level = min(float(self.limit), self.level + (now - self.t) * self.rate)
        self.t = max(self.t, now)

    def need(self, cost: int) -> float:
        """What the level must reach to admit a request costing ``cost`` (at least 1, so a
        bucket in debt or empty always refuses; at most ``limit``, so a huge request is not
        refused forever)."""
        return float(min(max(cost, 1), self.limit))

    def wait(self, cost: int) -> float:
        """Seconds from ``self.t`` until the level reaches :meth:`need` (0 when it already has)."""
        short = self.need(cost) - self.level
        return 0.0 if short <= EPS else short / self.rate

    def remaining(self) -> int:
        """Whole units left, as a header would say (never negative)."""
        return max(0, math.floor(self.level + EPS))

    def reset(self) -> float:
        """Seconds until the bucket is full again."""
        return max(0.0, (self.limit - self.level) / self.rate)


@dataclass(frozen=True, slots=True)
class Ticket:
    """Proof of admission: hand it back to :meth:`RateLimiter.release` when the attempt ends."""

    prompt_tokens: int
    concurrent: bool  # holds one concurrency slot
    id: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request.

    ``wait`` is the truthful delay (seconds on the limiter's clock) until the same request would
    be admitted by the buckets; ``None`` when only the concurrency cap refused it (when a slot
    frees depends on other attempts, so no honest number exists). ``limited_by`` names the
    bucket that needs the longest wait (``requests``, ``tokens``, ``input_tokens``,
    ``output_tokens``, ``concurrent``).
    """

    admitted: bool
    snapshot: RateLimitSnapshot
    wait: float | None = 0.0
    limited_by: str | None = None
    ticket: Ticket | None = None
    #: the bucket's state that refused the request (for provider messages: "Limit 60, Used 60")
    limit: int | None = None
    used: int | None = None
    requested: int | None = None


@dataclass
class RateLimiter:
    """Token buckets for one key (a lane, or several lanes that share a quota).

    Limits are per ``period`` seconds of the limiter's clock (60 by default: "per minute"; a
    drill compressed by ``time_scale`` passes ``60 * time_scale``). ``None`` means no such limit.
    """

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    concurrent: int | None = None
    period: float = 60.0
    clock: Clock = field(default_factory=MonotonicClock)
    active: int = field(default=0, init=False)
    buckets: dict[str, Bucket] = field(default_factory=dict, init=False)
    _next_ticket: int = field(default=0, init=False)
    _live: set[int] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if self.period <= 0:
            raise ValueError("period must be positive")
        now = self.clock.now()
        for name, limit in (
            ("requests", self.requests_per_minute),
            ("tokens", self.tokens_per_minute),
            ("input_tokens", self.input_tokens_per_minute),
            ("output_tokens", self.output_tokens_per_minute),
        ):
            if limit is not None:
                if limit < 1:
                    raise ValueError(f"{name} limit must be at least 1 (got {limit})")
                self.buckets[name] = Bucket(limit, self.period, float(limit), now)
        if self.concurrent is not None and self.concurrent < 1:
            raise ValueError(f"concurrent must be at least 1 (got {self.concurrent})")

    # -- state --------------------------------------------------------------------------------
    def _refill(self) -> float:
        now = self.clock.now()
        for b in self.buckets.values():
            b.refill(now)
        return now

    def _costs(self, prompt_tokens: int) -> dict[str, int]:
        """What admitting one request charges (or, for output tokens, requires) per bucket."""
        return {"requests": 1, "tokens": prompt_tokens, "input_tokens": prompt_tokens, "output_tokens": 0}

    def snapshot(self) -> RateLimitSnapshot:
        """The buckets as headers would report them now: limit, whole units remaining, and
        seconds until full."""
        self._refill()
        kw: dict[str, float | int] = {}
        for name, b in self.buckets.items():
            kw[f"{name}_limit"] = b.limit
            kw[f"{name}_remaining"] = b.remaining()
            kw[f"{name}_reset"] = b.reset()
        return RateLimitSnapshot(**kw)  # type: ignore[arg-type]

    def wait_for(self, prompt_tokens: int = 0) -> float:
        """Seconds until a request with ``prompt_tokens`` would pass every bucket (0 if now)."""
        self._refill()
        costs = self._costs(prompt_tokens)
        return max((b.wait(costs[n]) for n, b in self.buckets.items()), default=0.0)

    # -- decisions ----------------------------------------------------------------------------
    def try_acquire(self, prompt_tokens: int = 0) -> Decision:
        """Admit a request now (charging its request and prompt tokens, taking a concurrency
        slot) or refuse it with the truthful wait."""
        self._refill()
        costs = self._costs(prompt_tokens)
        waits = {n: b.wait(costs[n]) for n, b in self.buckets.items()}
        worst = max(waits, key=lambda n: waits[n]) if waits else None
        if worst is not None and waits[worst] > 0:
            b = self.buckets[worst]
            return Decision(
                False,
                self.snapshot(),
                wait=waits[worst],
                limited_by=worst,
                limit=b.limit,
                used=b.limit - b.remaining(),
                requested=max(costs[worst], 1),
            )
        if self.concurrent is not None and self.active >= self.concurrent:
            return Decision(
                False,
                self.snapshot(),
                wait=None,
                limited_by="concurrent",
                limit=self.concurrent,
                used=self.active,
                requested=1,
            )
        for n, b in self.buckets.items():
            b.level -= costs[n]
        holds = self.concurrent is not None
        if holds:
            self.active += 1
        self._next_ticket += 1
        ticket = Ticket(prompt_tokens, holds, self._next_ticket)
        self._live.add(ticket.id)
        return Decision(True, self.snapshot(), wait=0.0, ticket=ticket)

    def release(self, ticket: Ticket, completion_tokens: int = 0) -> None:
        """The attempt admitted with ``ticket`` ended: charge its completion tokens (to the
        combined and output buckets) and free its concurrency slot. Releasing a ticket twice
        does nothing the second time (an attempt ends once, however many hooks report it)."""
        if ticket.id not in self._live:
            return
        self._live.discard(ticket.id)
        self._refill()
        if completion_tokens > 0:
            for name in ("tokens", "output_tokens"):
                b = self.buckets.get(name)
                if b is not None:
                    b.level -= completion_tokens
        if ticket.concurrent:
            self.active = max(0, self.active - 1)
