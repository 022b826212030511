"""Shared views over the journal for checks: calls (attempt groups joined with the workload's call
records), failure and permanence classification, nearest-rank percentiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..journal import Attempt, Call, Journal

FAILING = frozenset({"error", "unknown"})

#: fault names that mean "this request can never succeed on this lane" (see no_retry_on_permanent)
PERMANENT_FAULTS = frozenset(
    {"context_length", "content_filter", "auth_revoked", "model_gone", "quota_exhausted", "spend_limit"}
)
_QUOTA_WORDS = ("insufficient_quota", "spend_limit", "billing", "quota_exhausted")
_BAD_REQUEST_WORDS = (
    "context_length",
    "context length",
    "prompt is too long",
    "content_filter",
    "content_policy",
    "content filter",
    "safety",
)


def is_failure(a: Attempt) -> bool:
    """The attempt did not deliver an answer (error, or an outcome nobody can know)."""
    return a.outcome in FAILING


def is_complete(a: Attempt) -> bool:
    """The attempt delivered the whole answer: outcome ok and, where the simulator says how long
    the answer is, every token of it."""
    if a.outcome != "ok":
        return False
    return a.expected_tokens is None or a.tokens >= a.expected_tokens


def end_time(a: Attempt) -> float:
    """When the attempt ended (its start if it never recorded an end)."""
    return a.t_end if a.t_end is not None else a.t_start


def _words(obj: Any) -> str:
    if isinstance(obj, dict):
        return " ".join(_words(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return " ".join(_words(v) for v in obj)
    return "" if obj is None else str(obj)


def permanent_reason(a: Attempt) -> str | None:
    """Why retrying this attempt's request on the same lane is pointless, or ``None``.

    Permanent: a fault named in :data:`PERMANENT_FAULTS`; 401, 403, 404 (auth, permission, model
    gone); 402 billing; 400 for context length or content filter; 429 for exhausted quota or spend
    limit (``insufficient_quota``, ``enforced_spend_limit_reached``, billing)."""
    name = a.fault_name
    if name in PERMANENT_FAULTS:
        return f"fault {name}"
    text = _words(a.error).lower()
    st = a.status
    if st in (401, 403, 404):
        return {401: "unauthorized (401)", 403: "forbidden (403)", 404: "not found (404)"}[st]
    if st == 402:
        return "billing (402)"
    if st == 400 and any(w in text for w in _BAD_REQUEST_WORDS):
        return "bad request: " + next(w for w in _BAD_REQUEST_WORDS if w in text) + " (400)"
    if st == 429 and any(w in text for w in _QUOTA_WORDS):
        return "quota: " + next(w for w in _QUOTA_WORDS if w in text) + " (429)"
    return None


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of non-empty ``values``."""
    if not values:
        raise ValueError("percentile of no values")
    s = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(s)))
    return s[min(rank, len(s)) - 1]


@dataclass
class CallView:
    """One call: its attempts in start order and, when the workload reported it, its record."""

    key: str
    attempts: list[Attempt] = field(default_factory=list)
    call: Call | None = None

    @property
    def t_start(self) -> float:
        if self.call is not None:
            return self.call.t_start
        return self.attempts[0].t_start

    @property
    def t_end(self) -> float | None:
        if self.call is not None and self.call.t_end is not None:
            return self.call.t_end
        ends = [a.t_end for a in self.attempts if a.t_end is not None]
        return max(ends) if ends else None

    @property
    def fingerprint(self) -> str | None:
        if self.call is not None and self.call.fingerprint:
            return self.call.fingerprint
        return next((a.fingerprint for a in self.attempts if a.fingerprint), None)

    @property
    def attempt_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.attempts)

    def complete_attempts(self) -> list[Attempt]:
        return [a for a in self.attempts if is_complete(a)]

    def serving_attempt(self) -> Attempt | None:
        """The complete attempt whose answer the agent took: the last complete one on the lane the
        call record names, else the last complete one."""
        done = self.complete_attempts()
        if self.call is not None and self.call.lane:
            on_lane = [a for a in done if a.lane == self.call.lane]
            if on_lane:
                return on_lane[-1]
        return done[-1] if done else None

    @property
    def outcome(self) -> str:
        """The call record's outcome; without one, ok if some attempt was complete, error if every
        attempt was an error, else unknown."""
        if self.call is not None:
            return self.call.outcome
        if self.complete_attempts():
            return "ok"
        if self.attempts and all(a.outcome == "error" for a in self.attempts):
            return "error"
        return "unknown"

    def on(self, lane: str) -> list[Attempt]:
        return [a for a in self.attempts if a.lane == lane]

    def lanes(self) -> list[str]:
        return sorted({a.lane for a in self.attempts})


def call_views(journal: Journal) -> list[CallView]:
    """Every call, in start order: attempt groups from :meth:`Journal.by_call` joined with call
    records by call id, else by fingerprint (and, when several records share one, by time)."""
    groups = journal.by_call()
    views: dict[str, CallView] = {k: CallView(k, list(v)) for k, v in groups.items()}
    extra: list[CallView] = []
    records = journal.calls()
    # first pass: exact call ids
    pending: list[Call] = []
    for c in records:
        v = views.get(c.id)
        if v is not None and v.call is None:
            v.call = c
        else:
            pending.append(c)
    # second pass: fingerprints (attempts sent without a call id header)
    by_fp: dict[str, list[Call]] = {}
    for c in pending:
        v = views.get(c.fingerprint) if c.fingerprint else None
        if v is None or v.call is not None:
            extra.append(CallView(c.id, [], c))
        else:
            by_fp.setdefault(v.key, []).append(c)
    for key, cs in by_fp.items():
        v = views[key]
        if len(cs) == 1:
            v.call = cs[0]
            continue
        rest = list(v.attempts)
        for c in cs:  # several calls with the same conversation: split the attempts by time
            lo, hi = c.t_start - 1e-6, (c.t_end if c.t_end is not None else math.inf) + 1e-6
            mine = [a for a in rest if lo <= a.t_start <= hi]
            rest = [a for a in rest if a not in mine]
            extra.append(CallView(c.id, mine, c))
        v.attempts = rest
    out = [v for v in views.values() if v.attempts or v.call is not None] + extra
    out.sort(key=lambda v: (v.t_start, v.key))
    return out


def has_call_records(journal: Journal) -> bool:
    return bool(journal.calls())


def ids(attempts: Iterable[Attempt]) -> tuple[str, ...]:
    return tuple(a.id for a in attempts)


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}s"
