"""Summaries for machines and pull requests: ``routechaos report JOURNAL --format json|md``.

Both come from the same model as the HTML report, so they name the same checks, calls and
attempts in the same order: failures first, each with the evidence it rests on. The Markdown is
written for a pull-request comment or ``$GITHUB_STEP_SUMMARY``: a table of verdicts, the problems
of every failing or unknown check, and the passing checks folded away.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..checks import Evidence, Verdict
from .episodes import markdown_lines
from .model import DrillModel

__all__ = ["lane_counts", "to_json", "to_markdown"]

MAX_MD_ITEMS = 20


def lane_counts(m: DrillModel) -> list[dict[str, Any]]:
    """Attempts per lane by outcome and faults applied; every lane of the profile, tried or not."""
    out = []
    for lane in m.lanes:
        atts = [a for a in m.attempts if a.lane == lane]
        outcomes = Counter(a.outcome for a in atts)
        out.append(
            {
                "lane": lane,
                "attempts": len(atts),
                "ok": outcomes.get("ok", 0),
                "error": outcomes.get("error", 0),
                "unknown": outcomes.get("unknown", 0),
                "faults": dict(Counter(a.fault_name for a in atts if a.fault_name).most_common()),
            }
        )
    return out


def _call_counts(m: DrillModel) -> dict[str, int]:
    states = Counter(c.state for c in m.calls)
    return {"total": len(m.calls), **{s: states.get(s, 0) for s in ("ok", "truncated", "error", "unknown")}}


def to_json(m: DrillModel, *, journal: str | None = None, report: str | None = None) -> dict[str, Any]:
    """The verdict, the drill's facts, per-lane counts, and every check (failures first) with its
    problems in full; passing evidence is counted (checks.json keeps all of it)."""
    checks = []
    for r in m.results():
        checks.append(
            {
                "name": r.name,
                "verdict": r.verdict.value,
                "summary": r.summary,
                "params": {k: v for k, v in r.params.items() if v is not None},
                "problems": [e.to_json() for e in r.problems()],
                "passing_evidence": sum(e.verdict is Verdict.PASS for e in r.evidence),
            }
        )
    cited = [
        {
            "id": c.key,
            "state": c.state,
            "verdict": c.verdict.value if c.verdict else None,
            "cited_by": c.cited_by,
            "lane": c.lane,
            "attempts": list(c.view.attempt_ids),
        }
        for c in m.calls
        if c.verdict is not None
    ]
    return {
        "verdict": m.report.verdict.value if m.report is not None else None,
        "profile": m.profile,
        "seed": m.seed,
        "time_scale": m.time_scale,
        "journal": journal,
        "report": report,
        "lanes": lane_counts(m),
        "calls": _call_counts(m),
        "checks": checks,
        "cited_calls": cited,
        "episodes": m.episodes.to_json() if m.episodes is not None else None,
        "cost": m.cost,
    }


def _md(text: object) -> str:
    """Text safe in a Markdown table cell or list item."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _code(text: object) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def _md_evidence(e: Evidence) -> str:
    bits = [f"**{e.verdict.value}** {_md(e.what)}"]
    if e.measured is not None:
        bits.append(f"measured {e.measured:.3f}" + (f" vs bound {e.bound:.3f}" if e.bound is not None else ""))
    if e.call:
        bits.append("call " + _code(e.call))
    if e.lane:
        bits.append("lane " + _code(e.lane))
    if e.attempts:
        shown = " ".join(_code(a) for a in e.attempts[:8])
        bits.append("attempts " + shown + (f" … {len(e.attempts) - 8} more" if len(e.attempts) > 8 else ""))
    return "- " + " · ".join(bits)


def to_markdown(m: DrillModel, *, report: str | None = None) -> str:
    """A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    verdict = m.report.verdict.value.upper() if m.report is not None else "NOT JUDGED"
    lines = [f"### routechaos drill {_code(m.profile or '-')}: **{verdict}**", ""]
    tried = {a.lane for a in m.attempts}
    untried = [lane for lane in m.lanes if lane not in tried]
    counts = _call_counts(m)
    facts = [
        f"seed {m.seed if m.seed is not None else '-'}",
        f"time scale {m.time_scale:g}",
        f"{counts['total']} calls ({counts['ok']} ok, {counts['truncated']} truncated, {counts['error']} error, "
        f"{counts['unknown']} unknown)",
        f"{len(m.attempts)} attempts on {len(m.lanes)} lanes"
        + (f" ({', '.join(untried)} never tried)" if untried else ""),
        "times in profile seconds",
    ]
    lines += [" · ".join(facts), ""]
    if m.cost:
        lines += [f"Cost: {_md(m.cost['line'])}", ""]
    results = m.results()
    if not results:
        lines.append("No checks were evaluated.")
        return "\n".join(lines) + "\n"
    bad = [r for r in results if r.verdict is not Verdict.PASS]
    good = [r for r in results if r.verdict is Verdict.PASS]
    lines += ["| check | verdict | summary |", "| --- | --- | --- |"]
    lines += [f"| {_code(r.name)} | **{r.verdict.value.upper()}** | {_md(r.summary)} |" for r in bad]
    if not bad:
        lines += [f"| {_code(r.name)} | {r.verdict.value.upper()} | {_md(r.summary)} |" for r in good]
    for r in bad:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items() if v is not None)
        lines += ["", f"#### {r.verdict.value.upper()} {_code(r.name)}" + (f" ({_md(params)})" if params else ""), ""]
        lines.append(_md(r.summary))
        problems = r.problems()
        if problems:
            lines.append("")
            lines += [_md_evidence(e) for e in problems[:MAX_MD_ITEMS]]
            if len(problems) > MAX_MD_ITEMS:
                lines.append(f"- … {len(problems) - MAX_MD_ITEMS} more in the report")
    if good and bad:
        lines += ["", f"<details><summary>{len(good)} check(s) passed</summary>", ""]
        lines += [f"- {_code(r.name)}: {_md(r.summary)}" for r in good]
        lines += ["", "</details>"]
    if m.episodes is not None:
        lines += markdown_lines(m.episodes)
    if report:
        lines += ["", f"Timeline, latency and every attempt: {_code(report)} (call and attempt ids as above)."]
    return "\n".join(lines) + "\n"
