"""Shared views over the journal for checks: calls (attempt groups joined with the workload's call
records), failure and permanence classification, nearest-rank percentiles."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..attribution import attribution_of, call_keys, text_matches
from ..journal import Attempt, Call, Journal
from .base import Evidence, Verdict

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
    """The attempt delivered the whole answer (:attr:`Attempt.complete`)."""
    return a.complete


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
    """One call: its attempts in start order and, when the workload reported it, its record.

    ``ambiguous_with`` names the other calls that could have made some of these attempts (the
    same conversation sent by several calls at once, settled by timing: see
    :mod:`harness.attribution`); empty when every attempt is tied to this call for certain."""

    key: str
    attempts: list[Attempt] = field(default_factory=list)
    call: Call | None = None
    ambiguous_with: tuple[str, ...] = ()

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
        """The complete attempt whose answer the agent took: the one whose canonical answer the
        call returned, else the last complete one on the lane the call record names, else the
        last complete one."""
        done = self.complete_attempts()
        if self.call is not None and self.call.text:
            said = [a for a in done if text_matches(self.call.text, a.fingerprint, a.expected_tokens, a.answer)]
            if said:
                return said[-1]
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

    def attributed(self) -> str:
        """A note for evidence when the attempts were tied to this call by timing alone."""
        if not self.ambiguous_with:
            return ""
        return f" (attributed by timing: calls {', '.join(self.ambiguous_with[:4])} had the same conversation)"


def call_views(journal: Journal) -> list[CallView]:
    """Every call, in start order: each call record with the attempts it caused, and the calls
    seen from the wire alone (attempts tied to no record). One record, one view; one attempt, at
    most one view. Attempts outside every call record are left out: :func:`unattributed`."""
    att = attribution_of(journal)
    attempts = journal.attempts()
    groups: dict[str, list[Attempt]] = {}
    for a in attempts:
        key = att.call_of.get(a.id)
        if key is not None:
            groups.setdefault(key, []).append(a)
    records = journal.calls()
    views = [CallView(k, groups.pop(k, []), c) for c, k in zip(records, call_keys(records), strict=True)]
    views += [CallView(k, atts) for k, atts in groups.items()]
    for v in views:
        v.ambiguous_with = att.ambiguous_calls(v.attempt_ids)
    views.sort(key=lambda v: (v.t_start, v.key))
    return views


def unattributed(journal: Journal) -> list[Attempt]:
    """Attempts that no call record covers, in a journal that has call records."""
    ids_ = set(attribution_of(journal).unattributed)
    return [a for a in journal.attempts() if a.id in ids_]


def doubt(e: Evidence, v: CallView | None) -> Evidence:
    """A per-call failure that rests on attempts tied to their call by timing alone (the same
    conversation from several calls at once) is not shown: it becomes ``UNKNOWN``, saying why."""
    if e.verdict is not Verdict.FAIL or v is None or not v.ambiguous_with:
        return e
    why = v.attributed() + ": which of them made which attempt cannot be told"
    return dataclasses.replace(e, verdict=Verdict.UNKNOWN, what=e.what + why)


def has_call_records(journal: Journal) -> bool:
    return bool(journal.calls())


def ids(attempts: Iterable[Attempt]) -> tuple[str, ...]:
    return tuple(a.id for a in attempts)


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}s"
