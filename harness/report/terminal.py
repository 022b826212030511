"""The terminal summary of a drill: lanes at a glance, calls by state, then the checks, failures
first with their evidence (the same call and attempt ids as the HTML report)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from ..checks import Report, Verdict, render_failure
from ..journal import Journal
from .episodes import text_table
from .model import build_model
from .summary import lane_counts

__all__ = ["print_summary"]

_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "bold red", Verdict.UNKNOWN: "yellow"}


def print_summary(
    console: Console, journal: Journal, report: Report | None, *, details: bool = True, profile: Any = None
) -> None:
    """Lanes (every lane of the profile, with attempts by outcome and faults applied), calls by
    state, then every check, failed and unknown first; each failed or unknown check's evidence
    follows with the timeline of the attempts it cites."""
    m = build_model(journal, report, profile)
    lanes = Table(title="lanes", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("lane", "attempts", "ok", "error", "unknown", "faults applied"):
        lanes.add_column(col, justify="left" if col in ("lane", "faults applied") else "right")
    for row in lane_counts(m):
        faults = ", ".join(f"{k}×{v}" for k, v in row["faults"].items()) or ("-" if row["attempts"] else "never tried")
        lanes.add_row(row["lane"], *(str(row[k]) for k in ("attempts", "ok", "error", "unknown")), faults)
    console.print(lanes)
    if m.calls:
        n = {s: sum(c.state == s for c in m.calls) for s in ("ok", "truncated", "error", "unknown")}
        served: dict[str, int] = {}
        for c in m.calls:
            if c.lane and c.state == "ok":
                served[c.lane] = served.get(c.lane, 0) + 1
        console.print(
            f"calls: {len(m.calls)} ({n['ok']} ok, {n['truncated']} truncated, {n['error']} error, "
            f"{n['unknown']} unknown)"
            + (f"; answered by {', '.join(f'{k} {v}' for k, v in served.items())}" if served else ""),
            highlight=False,
        )
    if m.episodes is not None:
        _print_episodes(console, m.episodes)
    if m.cost:
        console.print(f"cost: {m.cost['line']}", highlight=False)
    if report is None:
        return
    console.print()
    results = m.results()
    for r in results:
        style = _STYLE[r.verdict] if r.decides else "magenta"
        console.print(f"[{style}]{r.label:7}[/] {r.name}: {r.summary}", highlight=False)
    for w in report.warnings:
        console.print(f"[magenta]warning[/] {w}", highlight=False)
    if details:
        for r in results:
            if r.verdict is Verdict.PASS:
                continue
            console.print()
            console.print(render_failure(r, journal), markup=False, highlight=False)
    console.print()
    console.print(f"verdict: [{_STYLE[report.verdict]}]{report.verdict.value.upper()}[/]")


def _print_episodes(console: Console, b: Any) -> None:
    """The per-episode breakdown (:mod:`harness.report.episodes`) as plain columns (they read
    the same piped into a CI log as in a terminal), and its headline."""
    rows = text_table(b)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    console.print("episodes (seconds; tool wait: marked tool time in brackets)", highlight=False)
    for r in rows:
        cells = [c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        console.print("  " + "  ".join(cells).rstrip(), highlight=False, markup=False, soft_wrap=True)
    if len(b.rows) > len(rows) - 1:
        console.print(f"  ... {len(b.rows) - len(rows) + 1} more episodes in the report", highlight=False)
    console.print(b.headline(), highlight=False, soft_wrap=True)
