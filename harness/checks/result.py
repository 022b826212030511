"""What a check concludes (:class:`Verdict`, :class:`Evidence`, :class:`CheckResult`, :func:`combine`)
and how a result that did not pass reads: its evidence and the timeline of the attempts it cites.

The leaf of the checks package: every check, the registry and the judge import it, and it imports
none of them. Import its names from :mod:`harness.checks` (or :mod:`harness.checks.base`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..attribution import attribution_of
from ..journal import Attempt, Call, Journal

__all__ = ["CheckResult", "Evidence", "Verdict", "combine", "render_failure", "render_timeline"]


class Verdict(enum.StrEnum):
    """What a check concluded. ``FAIL`` beats ``UNKNOWN`` beats ``PASS`` when combined."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


_RANK = {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}


def combine(verdicts: Iterable[Verdict | CheckResult | Evidence]) -> Verdict:
    """The overall verdict: any ``FAIL`` fails, else any ``UNKNOWN`` is unknown, else ``PASS``.

    Accepts verdicts, results or evidence items; an empty collection passes (nothing was asked).
    """
    worst = Verdict.PASS
    for v in verdicts:
        v = v if isinstance(v, Verdict) else v.verdict
        if _RANK[v] > _RANK[worst]:
            worst = v
    return worst


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation behind a verdict: what was seen, on which call/attempts/lane, when, and the
    measured value against the bound it was held to. ``verdict`` says whether this item is a
    violation (``FAIL``), a case the journal cannot decide (``UNKNOWN``) or a measurement that
    held (``PASS``, kept so a report can show actual vs requested for every case)."""

    what: str
    verdict: Verdict = Verdict.FAIL
    call: str | None = None
    attempts: tuple[str, ...] = ()
    lane: str | None = None
    t: float | None = None
    measured: float | None = None
    bound: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["verdict"] = self.verdict.value
        d["attempts"] = list(self.attempts)
        return d


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check, a one-line summary and the evidence behind it.

    ``severity`` is the profile's: an ``error`` check decides the drill, a ``warn`` check is
    reported and never fails it. ``notes`` say what may have distorted the verdict (SDK retries in
    a compressed drill, a workload that ended early) without changing it."""

    name: str
    verdict: Verdict
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def decides(self) -> bool:
        """Whether this result counts towards the drill's verdict (``severity: error``)."""
        return self.severity == "error"

    @property
    def label(self) -> str:
        """``PASS``/``FAIL``/``UNKNOWN``, or ``WARN`` for a warn-only check that did not pass."""
        if not self.decides and self.verdict is not Verdict.PASS:
            return "WARN"
        return self.verdict.value.upper()

    def problems(self) -> list[Evidence]:
        """Evidence items that failed, then those that are unknown."""
        return [e for e in self.evidence if e.verdict is Verdict.FAIL] + [
            e for e in self.evidence if e.verdict is Verdict.UNKNOWN
        ]

    def render(self, journal: Journal | None = None, **kw: Any) -> str:
        return render_failure(self, journal, **kw)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "params": dict(self.params),
            "severity": self.severity,
            "notes": list(self.notes),
            "evidence": [e.to_json() for e in self.evidence],
        }


# -- rendering --------------------------------------------------------------------------------


def _t(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


_COLS = ("t_start", "t_first", "t_end", "lane", "call", "try", "status", "end_reason", "fault", "tokens", "wait", "id")


def render_timeline(attempts: Sequence[Attempt], *, max_rows: int = 40, calls: Mapping[str, str] | None = None) -> str:
    """The attempts as a table in start order: times, lane, call (``calls`` maps attempt ids to
    the call that made them, else the header's call id or the fingerprint), SDK retry count,
    status, end reason, fault, tokens/expected, requested Retry-After, id."""
    rows = [list(_COLS)]
    ordered = sorted(attempts, key=lambda a: (a.t_start, a.id))
    shown = ordered if len(ordered) <= max_rows else ordered[: max_rows - 1]
    for a in shown:
        toks = f"{a.tokens}/{a.expected_tokens}" if a.expected_tokens is not None else str(a.tokens)
        rows.append(
            [
                _t(a.t_start),
                _t(a.t_first_token),
                _t(a.t_end),
                a.lane,
                (calls or {}).get(a.id) or a.call_id or a.fingerprint or "-",
                "-" if a.retry_count is None else str(a.retry_count),
                "-" if a.status is None else str(a.status),
                a.end_reason,
                a.fault_name or "-",
                toks,
                "-" if a.retry_after is None else f"{a.retry_after:g}s",
                a.id,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLS))]
    numeric = {0, 1, 2, 5, 6}
    lines = [
        "  ".join(c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
        for r in rows
    ]
    if len(shown) < len(ordered):
        lines.append(f"... {len(ordered) - len(shown)} more attempts")
    return "\n".join(lines)


def _render_call(c: Call) -> str:
    parts = [f"call {c.id}: outcome={c.outcome}", f"t_start={_t(c.t_start)}", f"t_end={_t(c.t_end)}"]
    if c.lane:
        parts.append(f"lane={c.lane}")
    if c.complete is not None:
        parts.append(f"complete={c.complete}")
    if c.error_type or c.error:
        parts.append(f"error={c.error_type or ''}{': ' if c.error_type and c.error else ''}{c.error or ''}")
    return " ".join(parts)


def _render_evidence(e: Evidence) -> str:
    mark = {Verdict.FAIL: "FAIL", Verdict.UNKNOWN: "UNKNOWN", Verdict.PASS: "ok"}[e.verdict]
    bits = [f"[{mark}] {e.what}"]
    ctx = []
    if e.call is not None:
        ctx.append(f"call={e.call}")
    if e.lane is not None:
        ctx.append(f"lane={e.lane}")
    if e.t is not None:
        ctx.append(f"t={e.t:.3f}")
    if e.measured is not None:
        ctx.append(f"measured={e.measured:.3f}" if isinstance(e.measured, float) else f"measured={e.measured}")
    if e.bound is not None:
        ctx.append(f"bound={e.bound:.3f}" if isinstance(e.bound, float) else f"bound={e.bound}")
    if ctx:
        bits.append("(" + ", ".join(ctx) + ")")
    return " ".join(bits)


def render_failure(
    result: CheckResult, journal: Journal | None = None, *, max_items: int = 8, max_rows: int = 40
) -> str:
    """A failed (or unknown) result as text for a pytest assertion message: the verdict and
    summary, then each problem with the timeline of the attempts (and the call record) involved."""
    ps = ", ".join(f"{k}={v}" for k, v in result.params.items() if v is not None)
    lines = [f"{result.name}({ps}): {result.verdict.value.upper()} - {result.summary}"]
    problems = result.problems() or (result.evidence if result.verdict is not Verdict.PASS else [])
    by_id = {a.id: a for a in journal.attempts()} if journal is not None else {}
    calls = {c.id: c for c in journal.calls()} if journal is not None else {}
    owner: dict[str, str] = {}
    if journal is not None:
        owner = attribution_of(journal).call_of
    for e in problems[:max_items]:
        lines.append("  " + _render_evidence(e))
        if e.call is not None and e.call in calls:
            lines.append("    " + _render_call(calls[e.call]))
        atts = [by_id[i] for i in e.attempts if i in by_id]
        if atts:
            lines += ["    " + ln for ln in render_timeline(atts, max_rows=max_rows, calls=owner).splitlines()]
        elif e.attempts:
            lines.append("    attempts: " + ", ".join(e.attempts))
    if len(problems) > max_items:
        lines.append(f"  ... {len(problems) - max_items} more")
    return "\n".join(lines)
