"""Shared views over the journal for checks: calls (attempt groups joined with the workload's call
records), failure and permanence classification, nearest-rank percentiles."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..attribution import attribution_of
from ..callviews import CallView, call_views, is_complete  # noqa: F401  (kept importable from here, as the checks do)
from ..journal import Attempt, Journal
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


#: the clock noise between an agent's sleep and the lane's timestamps (real seconds)
CLOCK_NOISE = 0.001


def attempt_call_keys(journal: Journal) -> dict[str, str]:
    """Attempt id -> the key of the call that made it (header, or inferred: ``harness.attribution``)."""
    of = attribution_of(journal).call_of
    return {a.id: of.get(a.id) or a.call_id or a.fingerprint or a.id for a in journal.attempts()}
