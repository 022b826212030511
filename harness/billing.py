"""Usage and cost as providers bill them, from the journal.

Each lane may carry a price (``lanes.<name>.prices``: USD per million input, output, cached-input
and cache-write tokens). An attempt is billed what the provider would bill:

- refused before generation (an error status, a dropped connection before any answer): nothing;
- answered: its usage, the prompt split into uncached input, cached input and cache writes;
- a stream cut (by a fault, a stall, an in-band error): the input and the output generated up to
  the cut (``Attempt.tokens``);
- a stream whose client hung up (``client_gone``): the whole answer, since the provider drains
  the generation upstream after the client left and bills all of it.

:func:`bill_journal` bills every attempt, ties attempts to calls (the same
:func:`~harness.callviews.call_views` every check uses) and splits the run's cost into the
work that was kept (each call's serving attempt), the work thrown away (every other attempt of
the call), and the cache lost to failover (the simulator notes, per answer, the prompt tokens
another lane of the drill held in its cache: ``usage.cache_elsewhere_tokens``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from .callviews import call_views
from .journal import Attempt, Journal

__all__ = [
    "PRICE_RULES",
    "Billed",
    "Prices",
    "RunBill",
    "bill_attempt",
    "bill_journal",
    "lane_prices",
    "parse_prices",
    "prices_json_schema",
    "prices_of",
]

_DRAINED = frozenset({"client_gone"})
_WHOLE = frozenset({"complete", "no_terminator"})


class PriceRule(NamedTuple):
    doc: str


def _price(default: float | None, doc: str) -> Any:
    return field(default=default, metadata={"rule": PriceRule(doc)})


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens. Cached input and cache writes cost the input price unless set."""

    input: float = _price(0.0, "USD per million uncached input tokens")
    output: float = _price(0.0, "USD per million output tokens")
    cached_input: float | None = _price(None, "USD per million input tokens read from the prompt cache")
    cache_write: float | None = _price(None, "USD per million input tokens written to the prompt cache")

    def cost(self, uncached: int, cached: int, written: int, output: int) -> float:
        ci = self.input if self.cached_input is None else self.cached_input
        cw = self.input if self.cache_write is None else self.cache_write
        return (uncached * self.input + cached * ci + written * cw + output * self.output) / 1e6

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


PRICE_RULES: dict[str, PriceRule] = {f.name: f.metadata["rule"] for f in fields(Prices)}


def parse_prices(raw: Any, error: Callable[[tuple[str, ...], str], Exception]) -> Prices:
    """A profile's ``prices:`` mapping, each a finite number >= 0."""
    if not isinstance(raw, dict):
        raise error((), "must be a mapping of prices (input:, output:, cached_input:, cache_write:)")
    for key, value in raw.items():
        if key not in PRICE_RULES:
            raise error((str(key),), f"unknown price; expected one of {', '.join(PRICE_RULES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise error((str(key),), f"must be a number >= 0, USD per million tokens (got {value!r})")
    return Prices(**{k: float(v) for k, v in raw.items()})


def prices_json_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "description": "What the lane costs, in USD per million tokens (as the provider bills them).",
        "properties": {
            name: {"type": "number", "minimum": 0, "description": rule.doc} for name, rule in PRICE_RULES.items()
        },
    }


def lane_prices(profile: Any) -> dict[str, dict[str, float]]:
    """Each priced lane's prices, for the ``drill_start`` mark (a report re-bills from it)."""
    return {name: spec.prices.to_dict() for name, spec in profile.lanes.items() if getattr(spec, "prices", None)}


def prices_of(journal: Journal) -> dict[str, Prices]:
    """The lanes' prices as the drill's ``drill_start`` mark recorded them."""
    start = next((m for m in journal.marks() if m.kind == "drill_start"), None)
    raw = (start.detail.get("prices") if start is not None else None) or {}
    out = {}
    for lane, p in raw.items():
        if isinstance(p, dict):
            try:
                out[lane] = Prices(**{k: float(v) for k, v in p.items() if k in PRICE_RULES})
            except (TypeError, ValueError):
                continue
    return out


@dataclass(frozen=True, slots=True)
class Billed:
    """What one attempt was billed: tokens by kind, and USD (0 on an unpriced lane).
    ``exact`` is False when the provider reported no usage for an answered attempt (a real
    upstream's cut stream): its input is then not known."""

    attempt: str
    lane: str
    uncached_input: int = 0
    cached_input: int = 0
    cache_write: int = 0
    output: int = 0
    cost: float = 0.0
    exact: bool = True

    @property
    def tokens(self) -> int:
        return self.uncached_input + self.cached_input + self.cache_write + self.output

    @property
    def input(self) -> int:
        return self.uncached_input + self.cached_input + self.cache_write


def bill_attempt(a: Attempt, prices: Prices | None = None) -> Billed:
    """The bill for one attempt (see the module's rules)."""
    u = a.usage or {}
    answered = a.status is not None and a.status < 400
    if not answered or (not u and a.tokens == 0):
        return Billed(a.id, a.lane, exact=bool(u) or not answered)
    total_in = int(u.get("input_tokens") or 0)
    cached = int(u.get("cached_input_tokens") or 0)
    written = int(u.get("cache_write_tokens") or 0)
    uncached = max(0, total_in - cached - written)
    whole = int(u.get("output_tokens") or 0) or (a.expected_tokens or 0)
    if not a.stream or a.end_reason in _WHOLE:
        out = whole or a.tokens
    elif a.end_reason in _DRAINED:
        out = max(whole, a.tokens)  # the provider finished the answer for nobody
    else:
        out = a.tokens
    cost = prices.cost(uncached, cached, written, out) if prices is not None else 0.0
    return Billed(a.id, a.lane, uncached, cached, written, out, cost, exact=bool(u))


@dataclass
class RunBill:
    """The run's bill: per attempt, per call (its attempts' sum), per lane; the kept work, the
    thrown-away work and the cache lost to failover."""

    attempts: dict[str, Billed] = field(default_factory=dict)
    calls: dict[str, float] = field(default_factory=dict)  # call key -> USD
    call_tokens: dict[str, int] = field(default_factory=dict)
    wasted: dict[str, Billed] = field(default_factory=dict)  # attempts whose output was thrown away
    cache_lost_tokens: int = 0
    cache_lost_cost: float = 0.0
    priced: bool = False
    #: the same successful work with no fault: every kept answer billed on the preferred lane,
    #: with the cache it lost to failover read from the cache
    baseline_cost: float = 0.0
    preferred: str | None = None

    @property
    def total(self) -> float:
        return sum(b.cost for b in self.attempts.values())

    @property
    def total_tokens(self) -> int:
        return sum(b.tokens for b in self.attempts.values())

    @property
    def wasted_cost(self) -> float:
        return sum(b.cost for b in self.wasted.values())

    @property
    def wasted_tokens(self) -> int:
        return sum(b.tokens for b in self.wasted.values())

    @property
    def baseline(self) -> float:
        """What the same successful work would have cost with no fault: each call's kept answer
        billed on the preferred lane (the first lane of the profile the agent used), the prompt
        tokens another lane held in its cache billed as cached."""
        return self.baseline_cost

    @property
    def baseline_tokens(self) -> int:
        return max(0, self.total_tokens - self.wasted_tokens)

    @property
    def amplification(self) -> float | None:
        """Run cost over the no-fault cost (tokens when no lane is priced); None with nothing kept."""
        if self.priced:
            return self.total / self.baseline if self.baseline > 0 else None
        return self.total_tokens / self.baseline_tokens if self.baseline_tokens > 0 else None

    @property
    def wasted_share(self) -> float:
        """The share of the run's cost (tokens when unpriced) that bought nothing: discarded
        attempts, and the cache premium lost to failover."""
        if self.priced:
            return (self.wasted_cost + self.cache_lost_cost) / self.total if self.total > 0 else 0.0
        return (self.wasted_tokens + self.cache_lost_tokens) / self.total_tokens if self.total_tokens else 0.0

    def lanes(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for b in self.attempts.values():
            row = out.setdefault(b.lane, {"cost": 0.0, "tokens": 0, "wasted_cost": 0.0, "wasted_tokens": 0})
            row["cost"] += b.cost
            row["tokens"] += b.tokens
            if b.attempt in self.wasted:
                row["wasted_cost"] += b.cost
                row["wasted_tokens"] += b.tokens
        return out

    def to_json(self) -> dict[str, Any]:
        """What a summary shows: cost and tokens per lane, the wasted share, the amplification."""
        amp = self.amplification
        return {
            "priced": self.priced,
            "total_usd": round(self.total, 6),
            "total_tokens": self.total_tokens,
            "lanes": {
                lane: {k: (round(v, 6) if "cost" in k else int(v)) for k, v in row.items()}
                for lane, row in sorted(self.lanes().items())
            },
            "wasted_share": round(self.wasted_share, 4),
            "cache_lost_tokens": self.cache_lost_tokens,
            "amplification": round(amp, 4) if amp is not None else None,
            "line": self.line(),
        }

    def line(self) -> str:
        """One line for a summary: cost per lane and the wasted share."""
        lanes = ", ".join(
            f"{lane} ${row['cost']:.4f} ({int(row['tokens'])} tok)" for lane, row in sorted(self.lanes().items())
        )
        amp = self.amplification
        what = "cost" if self.priced else "tokens"
        return (
            f"{lanes or 'nothing billed'}; wasted {self.wasted_share:.0%} of {what}"
            f" (cache lost to failover: {self.cache_lost_tokens} tok)"
            + (f"; amplification {amp:.2f}x" if amp is not None else "")
        )


def bill_journal(journal: Journal, prices: Mapping[str, Prices] | None = None) -> RunBill:
    """Bill every attempt of the journal (prices from its ``drill_start`` mark unless given)."""
    prices = prices_of(journal) if prices is None else prices
    bill = RunBill(priced=bool(prices))
    used = {a.lane for a in journal.attempts()}
    start = next((m for m in journal.marks() if m.kind == "drill_start"), None)
    order = [lane for lane in (start.detail.get("lanes") or [] if start is not None else []) if lane in used]
    bill.preferred = order[0] if order else next((a.lane for a in journal.attempts()), None)
    for a in journal.attempts():
        bill.attempts[a.id] = bill_attempt(a, prices.get(a.lane))
    for v in call_views(journal):
        bill.calls[v.key] = sum(bill.attempts[a.id].cost for a in v.attempts)
        bill.call_tokens[v.key] = sum(bill.attempts[a.id].tokens for a in v.attempts)
        kept = v.serving_attempt()
        for a in v.attempts:
            if a is not kept and bill.attempts[a.id].tokens:
                bill.wasted[a.id] = bill.attempts[a.id]
        if kept is None:
            continue
        got = bill.attempts[kept.id]
        lost = min(got.uncached_input, int((kept.usage or {}).get("cache_elsewhere_tokens") or 0))
        bill.cache_lost_tokens += lost
        p = prices.get(kept.lane)
        if p is not None and lost:
            cached_price = p.input if p.cached_input is None else p.cached_input
            bill.cache_lost_cost += lost * (p.input - cached_price) / 1e6
        ideal = prices.get(bill.preferred or kept.lane) or p
        if ideal is not None:
            bill.baseline_cost += ideal.cost(
                got.uncached_input - lost, got.cached_input + lost, got.cache_write, got.output
            )
    return bill
