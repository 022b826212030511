"""The terminal summary of a drill: lanes at a glance, then every check's verdict."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from ..checks import Report, Verdict, render_failure
from ..journal import Journal

__all__ = ["print_summary"]

_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "bold red", Verdict.UNKNOWN: "yellow"}


def print_summary(console: Console, journal: Journal, report: Report | None, *, details: bool = True) -> None:
    """Lanes (attempts by outcome, faults fired), calls, then checks; failures with their timeline."""
    lanes = Table(title="lanes", title_justify="left", show_edge=False, pad_edge=False)
    for col in ("lane", "attempts", "ok", "error", "unknown", "faults applied"):
        lanes.add_column(col, justify="left" if col in ("lane", "faults applied") else "right")
    by_lane: dict[str, list] = {}
    for a in journal.attempts():
        by_lane.setdefault(a.lane, []).append(a)
    for lane, attempts in by_lane.items():
        outcomes = Counter(a.outcome for a in attempts)
        faults = Counter(a.fault_name for a in attempts if a.fault_name)
        lanes.add_row(
            lane,
            str(len(attempts)),
            str(outcomes.get("ok", 0)),
            str(outcomes.get("error", 0)),
            str(outcomes.get("unknown", 0)),
            ", ".join(f"{k}×{v}" for k, v in faults.most_common()) or "-",
        )
    console.print(lanes)
    calls = journal.calls()
    if calls:
        outcomes = Counter(c.outcome for c in calls)
        served = Counter(c.lane for c in calls if c.lane)
        console.print(
            f"calls: {len(calls)} ({outcomes.get('ok', 0)} ok, {outcomes.get('error', 0)} error, "
            f"{outcomes.get('unknown', 0)} unknown)"
            + (f"; served by {', '.join(f'{k} {v}' for k, v in served.most_common())}" if served else "")
        )
    if report is None:
        return
    console.print()
    for r in report.results:
        console.print(f"[{_STYLE[r.verdict]}]{r.verdict.value.upper():7}[/] {r.name}: {r.summary}", highlight=False)
    if details:
        for r in report.failed():
            console.print()
            console.print(render_failure(r, journal), markup=False, highlight=False)
    console.print()
    console.print(f"verdict: [{_STYLE[report.verdict]}]{report.verdict.value.upper()}[/]")
