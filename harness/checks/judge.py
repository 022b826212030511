"""What a drill's verdict needs besides the checks: the agent's capabilities, the safety judgment
for checks that do not apply to it, and the drill-level facts a reader must see.

- **Capabilities** (``requires:``): a check about fallback says nothing useful about an agent
  that has no fallback. Such an agent is judged *safe* instead: every call ended cleanly (an
  answer or a classified error) and none was accepted truncated, which is all one can ask of it.
- **A drill that proved nothing fails**: a workload that made no call tested nothing, whatever
  the checks say (they are all UNKNOWN).
- **A workload that ended early** (before the profile's last fault window closed) leaves some
  checks without the situation they judge: the report names them.
- **SDK retries in a compressed drill**: an SDK's backoff and timeouts are real seconds, not
  compressed by ``time_scale``, so in profile time they look ``1 / time_scale`` times longer; the
  verdicts of checks that judge time may be distorted, and the report says which.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..journal import Attempt, Journal
from ._calls import call_views
from .base import CAPABILITIES, CHECKS, Check, CheckResult, Evidence, Report, Verdict, combine, make_checks
from .outcomes import NoLostCalls, NoTruncatedSuccess

__all__ = ["drill_facts", "evaluate_all", "observed_capabilities", "safe_instead"]


def observed_capabilities(journal: Journal) -> dict[str, bool]:
    """What the journal shows the agent can do: ``fallback`` when some call used two lanes (or,
    with no call attribution at all, when two lanes saw traffic); ``tools`` when some request
    offered tools."""
    views = call_views(journal)
    fallback = any(len(v.lanes()) > 1 for v in views)
    if not fallback and not views:
        fallback = len({a.lane for a in journal.attempts()}) > 1
    return {"fallback": fallback, "tools": any(a.tools_offered for a in journal.attempts())}


def safe_instead(chk: Check, journal: Journal, missing: Sequence[str]) -> CheckResult:
    """The result for ``chk`` when the agent lacks ``missing``: the safety judgment, so an agent
    without a fallback is not failed for not falling back, but is failed if it lost or truncated
    a call."""
    parts = [NoLostCalls().evaluate(journal)]
    if any(c.outcome == "ok" for c in journal.calls()):  # with no success, nothing can be truncated
        parts.append(NoTruncatedSuccess().evaluate(journal))
    verdict = combine(parts)
    why = ", ".join(f"the agent has no {m}: {CAPABILITIES[m].split('(seen: ')[0].strip()}, never seen" for m in missing)
    summary = (
        f"not applicable ({why}): judged safe instead: "
        + "; ".join(f"{p.name} {p.verdict.value}: {p.summary}" for p in parts)
    )
    evidence = [e for p in parts for e in p.problems()]
    evidence.insert(0, Evidence(f"requires {', '.join(missing)}: {why}", Verdict.PASS))
    return CheckResult(chk.name, verdict, summary, evidence, chk.params(), chk.severity)


def _with_note(r: CheckResult, note: str) -> CheckResult:
    return dataclasses.replace(r, notes=[*r.notes, note])


def drill_facts(journal: Journal, results: list[CheckResult]) -> tuple[list[CheckResult], list[str]]:
    """``results`` with the drill-level notes added, and the report's warnings."""
    warnings: list[str] = []
    attempts = journal.attempts()
    calls = journal.calls()
    if not attempts and not calls:
        results = [
            CheckResult(
                "workload",
                Verdict.FAIL,
                "the workload made no call: no attempt reached a lane and no call was reported, so the drill "
                "proved nothing",
            ),
            *results,
        ]
        return results, ["the workload made no call"]

    start = next(iter(journal.marks("drill_start")), None)
    scale = getattr(journal, "scale", 1.0)
    time_scale = float(start.detail.get("time_scale", 1.0)) if start is not None else 1.0
    last_close = start.detail.get("last_window_close") if start is not None else None
    ends = [c.t_end for c in calls if c.t_end is not None] + [a.t_end for a in attempts if a.t_end is not None]
    if isinstance(last_close, int | float) and ends:
        workload_end = max(ends) / scale / time_scale  # real seconds, then profile seconds
        if workload_end < last_close:
            blind = [r.name for r in results if r.verdict is Verdict.UNKNOWN]
            msg = (
                f"the workload ended at t={workload_end:.1f}s, before the profile's last fault window closed "
                f"(t={last_close:g}s)"
            )
            if blind:
                msg += f": {', '.join(blind)} could not judge what came after"
            warnings.append(msg)
            results = [_with_note(r, msg) if r.verdict is Verdict.UNKNOWN else r for r in results]

    results, lag_warning = _harness_lag(journal, results)
    if lag_warning:
        warnings.append(lag_warning)

    sdk_retries = [a for a in attempts if a.retry_count is not None and a.retry_count > 0]
    if sdk_retries and time_scale != 1.0:
        timed = [r.name for r in results if getattr(_check_class(r.name), "timed", False)]
        msg = (
            f"{len(sdk_retries)} SDK retries (x-stainless-retry-count > 0) in a drill compressed to time scale "
            f"{time_scale:g}: the SDK's own backoff and timeouts run in real seconds, {1 / time_scale:g}x longer "
            "in profile time"
        )
        if timed:
            msg += f"; verdicts that may be distorted: {', '.join(timed)}"
        warnings.append(msg)
        results = [_with_note(r, msg) if r.name in timed else r for r in results]
    return results, warnings


def _harness_lag(journal: Journal, results: list[CheckResult]) -> tuple[list[CheckResult], str | None]:
    """A timing failure that the harness's own lag could explain is not shown: the lanes' loop
    woke late by that much while it was measured (``harness.lag``), so the excess over the bound
    may be the harness's, not the agent's. Such an item becomes UNKNOWN, saying so."""
    marks = journal.marks("harness_lag")
    if not marks:
        return results, None
    scale = getattr(journal, "scale", 1.0)  # profile seconds per real second
    spans = [
        (m.t, m.t + float(m.detail.get("span", 0.0)) * scale, float(m.detail.get("lag", 0.0)) * scale) for m in marks
    ]
    by_id = {a.id: a for a in journal.attempts()}
    worst = max(float(m.detail.get("worst", 0.0)) for m in marks)
    total = sum(float(m.detail.get("lag", 0.0)) for m in marks)
    warning = (
        f"the harness itself ran late {len(marks)} time(s) (worst {worst * 1000:.0f} ms, {total:.2f} s in all, "
        "real time): the machine was too loaded for exact timing; a timing failure within that lag is UNKNOWN"
    )
    out: list[CheckResult] = []
    for r in results:
        if r.verdict is not Verdict.FAIL or not getattr(_check_class(r.name), "timed", False):
            out.append(r)
            continue
        evidence = []
        for e in r.evidence:
            lag, span = _lag_over(e, by_id, spans)
            excess = (e.measured - e.bound) if e.measured is not None and e.bound is not None else None
            if e.verdict is Verdict.FAIL and excess is not None and lag > 0 and excess <= lag:
                e = dataclasses.replace(
                    e,
                    verdict=Verdict.UNKNOWN,
                    what=f"{e.what} (the harness itself ran {lag:.3f}s late while this was measured: "
                    f"the {excess:.3f}s over the bound may be its own)",
                )
            elif e.verdict is Verdict.FAIL and excess is None and span > 0 and lag >= STALL_SHARE * span:
                # no figure to compare, but the lanes stalled for much of what the agent saw: its
                # watchdog may have fired on the harness's stall (a stream that froze), not a lane's
                e = dataclasses.replace(
                    e,
                    verdict=Verdict.UNKNOWN,
                    what=f"{e.what} (the harness itself stalled {lag:.3f}s of these attempts' {span:.3f}s: "
                    "the agent may have reacted to the harness's stall, not the lane's)",
                )
            evidence.append(e)
        out.append(dataclasses.replace(r, evidence=evidence, verdict=combine(evidence) if evidence else r.verdict))
    return out, warning


#: share of a failing item's attempts' span that the harness must have stalled for its own stall
#: to explain a behaviour with no figure to compare (an agent abandoning a stream that froze)
STALL_SHARE = 0.25


def _lag_over(
    e: Evidence, by_id: dict[str, Attempt], spans: list[tuple[float, float, float]]
) -> tuple[float, float]:
    """Profile seconds the harness lagged within the span of the attempts ``e`` cites, and that
    span (0 when it cites no attempt)."""
    times: list[float] = []
    for i in e.attempts:
        a = by_id.get(i)
        if a is not None:
            times += [a.t_start, a.t_end if a.t_end is not None else a.t_start]
    if e.t is not None:
        times.append(e.t)
    if not times:
        return 0.0, 0.0
    lo, hi = min(times), max(times)
    lag = sum(lag for start, end, lag in spans if start <= hi and end >= lo)
    return lag, (hi - lo) if e.attempts else 0.0


def _check_class(name: str) -> type[Check] | None:
    return CHECKS.get(name)


def evaluate_all(
    journal: Journal,
    checks: Iterable[Check] | Mapping[str, Any],
    *,
    raise_errors: bool = False,
    capabilities: Mapping[str, bool] | None = None,
) -> Report:
    """Evaluate every check on ``journal``. A check that raises is reported ``UNKNOWN`` with the
    exception (we do not know the answer), unless ``raise_errors``.

    A check whose ``requires:`` names a capability the agent lacks (``capabilities``, else what
    the journal shows) is replaced by the safety judgment (:func:`~harness.checks.judge.safe_instead`).
    The drill-level facts (:mod:`harness.checks.judge`) become the report's warnings, and a
    workload that made no call fails the drill: it proved nothing."""
    built = (
        make_checks(checks)
        if isinstance(checks, Mapping)
        else [c if isinstance(c, Check) else make_checks([c])[0] for c in checks]
    )
    have = observed_capabilities(journal)
    have.update(capabilities or {})
    results = []
    for chk in built:
        try:
            missing = [r for r in chk.requires if not have.get(r, False)]
            results.append(safe_instead(chk, journal, missing) if missing else chk.evaluate(journal))
        except Exception as exc:
            if raise_errors:
                raise
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            results.append(chk.result(Verdict.UNKNOWN, f"check raised {tb}"))
    results, warnings = drill_facts(journal, results)
    return Report(results, combine(r for r in results if r.decides), journal, warnings)
