"""What every report shows, computed once from the journal and the verdicts: the drill's facts
(profile, seed, time scale, lanes, fault windows), each call with its attempts, state, latency and
the verdicts that cite it, and the checks ordered failures first.

The HTML page, the terminal summary and the JSON/Markdown summaries all read this, so a call or an
attempt is named and judged the same way in each of them: a reader can go from a pull-request
comment to the terminal to the timeline by the same ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..billing import bill_journal
from ..canonical import canonical_text
from ..checks import CallView, CheckResult, Evidence, Report, Verdict, call_metrics, call_views
from ..journal import Attempt, Journal
from .episodes import breakdown

__all__ = ["CallRow", "DrillModel", "Window", "build_model", "nice_step", "ordered_results"]

_RANK = {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}
_PAIRS = {"fault_window_open": "fault_window_close", "toxic_window_open": "toxic_window_close", "lane_down": "lane_up"}


@dataclass(frozen=True)
class Window:
    """A shaded interval: a fault or toxic window, or a lane outage (``lane`` None: every lane)."""

    lane: str | None
    start: float
    end: float
    label: str
    open_ended: bool = False


@dataclass
class CallRow:
    """One call as reports show it."""

    key: str  # the id checks cite (the call record's id, else the attempt group's key)
    anchor: str  # an HTML id, safe in a URL fragment and a CSS selector
    view: CallView
    state: str  # ok | truncated | error | unknown
    verdict: Verdict | None = None  # the worst verdict of the evidence that cites this call, if any
    cited_by: list[str] = field(default_factory=list)  # check names whose problems cite it
    metrics: dict[str, float] = field(default_factory=dict)  # ttft, generation, total (profile seconds)
    accepted_chars: int | None = None  # length of the text the agent accepted
    canonical_chars: int | None = None  # length of the whole canonical answer, where the simulator gave one

    @property
    def t_start(self) -> float:
        return self.view.t_start

    @property
    def t_end(self) -> float | None:
        return self.view.t_end

    @property
    def lane(self) -> str | None:
        if self.view.call is not None and self.view.call.lane:
            return self.view.call.lane
        served = self.view.serving_attempt()
        return served.lane if served is not None else None


@dataclass
class DrillModel:
    """The drill as every report renders it. Times are in the journal's seconds (profile time when
    the journal was rescaled, as drills and ``routechaos report`` do)."""

    profile: str | None
    seed: int | None
    time_scale: float
    lanes: list[str]
    attempts: list[Attempt]
    calls: list[CallRow]
    windows: list[Window]
    horizon: float
    origin: float  # where the time axis starts: 0, or a round time before the first thing that happened
    report: Report | None
    attempt_verdicts: dict[str, Verdict]
    attempt_cited_by: dict[str, list[str]]
    call_of: dict[str, CallRow]  # call key, call record id or attempt id -> its row
    episodes: Any = None  # the agent-loop view (report.episodes.Breakdown), None when no loop ran
    cost: dict[str, Any] | None = None  # the run's bill (harness.billing), when anything was billed

    def call_for(self, key: str | None) -> CallRow | None:
        return None if key is None else self.call_of.get(key)

    def results(self) -> list[CheckResult]:
        return ordered_results(self.report)


def ordered_results(report: Report | None) -> list[CheckResult]:
    """Failed checks first, then unknown, then passed, each group in the profile's order."""
    if report is None:
        return []
    return sorted(report.results, key=lambda r: -_RANK[r.verdict])


def _worse(a: Verdict | None, b: Verdict) -> Verdict:
    return b if a is None or _RANK[b] > _RANK[a] else a


def _anchors(keys: list[str]) -> dict[str, str]:
    """``call-<key>`` with unsafe characters replaced, numbered where two keys collide."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for k in keys:
        base = "call-" + (re.sub(r"[^A-Za-z0-9_.-]", "_", k)[:64] or "x")
        a, n = base, 1
        while a in used:
            n += 1
            a = f"{base}-{n}"
        used.add(a)
        out[k] = a
    return out


def _state(v: CallView, canonical: str | None) -> str:
    """ok | truncated | error | unknown. Truncated: reported ok with ``complete: false``, or with a
    text that is not the whole canonical answer, or (no record) served by no complete attempt."""
    outcome = v.outcome
    if outcome != "ok":
        return outcome if outcome in ("error", "unknown") else "unknown"
    c = v.call
    if c is not None:
        if c.complete is False:
            return "truncated"
        if c.text is not None and canonical is not None and c.text.strip() != canonical.strip():
            return "truncated"
    return "ok"


def _canonical(v: CallView) -> str | None:
    """The whole canonical answer of the call, when an attempt says how long it is."""
    fp = v.fingerprint
    ref = v.serving_attempt()
    if ref is not None and ref.tool_calls:
        return None  # the answer was tool calls: there is no canonical text to compare with
    if ref is None or ref.expected_tokens is None:
        lane = v.call.lane if v.call is not None else None
        with_exp = [a for a in v.attempts if a.expected_tokens is not None]
        ref = next((a for a in reversed(with_exp) if a.lane == lane), with_exp[-1] if with_exp else None)
    if fp is None or ref is None or ref.expected_tokens is None:
        return None
    return canonical_text(fp, ref.expected_tokens)


def _metrics(v: CallView) -> dict[str, float]:
    """The latency budget's own figures (successful calls); for a call no complete attempt served
    (a truncated or failed one), TTFT and generation of the last attempt that streamed anything."""
    out = call_metrics(v)
    if "ttft" in out or not v.attempts:
        return out
    lane = v.call.lane if v.call is not None else None
    streamed = [a for a in v.attempts if a.t_first_token is not None]
    a = next((a for a in reversed(streamed) if a.lane == lane), streamed[-1] if streamed else None)
    if a is not None and a.t_first_token is not None:
        out["ttft"] = a.t_first_token - v.t_start
        if a.t_last_token is not None:
            out["generation"] = a.t_last_token - a.t_first_token
    return out


def _windows(journal: Journal, horizon: float) -> list[Window]:
    open_at: dict[tuple[str | None, str, str], float] = {}
    out: list[Window] = []
    for m in journal.marks():
        label = str(m.detail.get("fault") or m.detail.get("toxic") or m.kind.replace("_", " "))
        if m.kind in _PAIRS:
            open_at.setdefault((m.lane, _PAIRS[m.kind], label), m.t)
        elif m.kind in _PAIRS.values():
            start = open_at.pop((m.lane, m.kind, label), None)
            if start is not None:
                out.append(Window(m.lane, start, m.t, label))
    for (lane, _, label), start in open_at.items():
        out.append(Window(lane, start, max(start, horizon), label, open_ended=True))
    out.sort(key=lambda w: (w.start, w.label))
    return out


def nice_step(span: float, parts: int = 10) -> float:
    """A round tick step that cuts ``span`` into about ``parts`` pieces.

    Here, not in ``svg``: the model picks the axis origin on a tick, and the charts import the model.
    """
    raw = span / parts
    for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600):
        if s >= raw:
            return float(s)
    return 1200.0


def _origin(attempts: list[Attempt], rows: list[CallRow], windows: list[Window], horizon: float) -> float:
    """Where the axis starts: at 0, unless nothing happened in the first fifth of the drill (an
    agent that takes long to start), then at a round time just before the first attempt, call or
    fault window, so the bars are not squeezed into the right of the page."""
    first = min([a.t_start for a in attempts] + [r.t_start for r in rows] + [w.start for w in windows] + [horizon])
    if first < 0.2 * horizon:
        return 0.0
    step = nice_step(horizon - first)  # the axis's tick step, so it starts on a tick
    return max(0.0, (first // step) * step)


def _drill_facts(journal: Journal, profile: Any) -> tuple[str | None, int | None, float, list[str]]:
    start = next(iter(journal.marks("drill_start")), None)
    detail: dict[str, Any] = start.detail if start is not None else {}
    name = getattr(profile, "name", None) or detail.get("profile")
    seed = getattr(profile, "seed", None) if profile is not None else detail.get("seed")
    scale = getattr(profile, "time_scale", None) if profile is not None else detail.get("time_scale")
    lanes: list[str] = list(getattr(profile, "lanes", None) or detail.get("lanes") or [])
    return name, seed, float(scale) if scale else 1.0, lanes


def build_model(journal: Journal, report: Report | None = None, profile: Any = None) -> DrillModel:
    """Everything a report shows, from the journal (and the profile, for lanes never tried)."""
    name, seed, scale, lanes = _drill_facts(journal, profile)
    attempts = journal.attempts()
    for lane in [a.lane for a in attempts] + [m.lane for m in journal.marks() if m.lane]:
        if lane not in lanes:
            lanes.append(lane)
    views = call_views(journal)
    anchors = _anchors([v.call.id if v.call is not None else v.key for v in views])
    rows: list[CallRow] = []
    call_of: dict[str, CallRow] = {}
    for v in views:
        key = v.call.id if v.call is not None else v.key
        canonical = _canonical(v)
        row = CallRow(
            key=key,
            anchor=anchors[key],
            view=v,
            state=_state(v, canonical),
            metrics=_metrics(v),
            accepted_chars=len(v.call.text) if v.call is not None and v.call.text is not None else None,
            canonical_chars=len(canonical) if canonical is not None else None,
        )
        rows.append(row)
        for k in (key, v.key):
            call_of.setdefault(k, row)
    for row in rows:  # an attempt id finds its call too (evidence may cite attempts only)
        for a in row.view.attempts:
            call_of.setdefault(a.id, row)
    attempt_verdicts: dict[str, Verdict] = {}
    cited: dict[str, list[str]] = {}
    for r in report.results if report is not None else []:
        for ev in r.problems():
            _cite(ev, r.name, call_of, attempt_verdicts, cited)
    horizon = max(
        [a.t_end if a.t_end is not None else a.t_start for a in attempts]
        + [r.t_end if r.t_end is not None else r.t_start for r in rows]
        + [m.t for m in journal.marks()]
        + [0.001]
    )
    windows = _windows(journal, horizon)
    return DrillModel(
        profile=name,
        seed=seed,
        time_scale=scale,
        lanes=lanes,
        attempts=attempts,
        calls=rows,
        windows=windows,
        horizon=horizon,
        origin=_origin(attempts, rows, windows, horizon),
        report=report,
        attempt_verdicts=attempt_verdicts,
        attempt_cited_by=cited,
        call_of=call_of,
        episodes=_loops(journal),
        cost=bill_journal(journal).to_json() if any(a.usage for a in attempts) else None,
    )


def _loops(journal: Journal) -> Any:
    return breakdown(journal)


def _cite(
    ev: Evidence,
    check: str,
    call_of: dict[str, CallRow],
    attempt_verdicts: dict[str, Verdict],
    cited: dict[str, list[str]],
) -> None:
    """Mark the call and attempts a failing or unknown evidence item names."""
    rows = {call_of[ev.call].anchor: call_of[ev.call]} if ev.call in call_of else {}
    for aid in ev.attempts:
        attempt_verdicts[aid] = _worse(attempt_verdicts.get(aid), ev.verdict)
        names = cited.setdefault(aid, [])
        if check not in names:
            names.append(check)
        if ev.call not in call_of and aid in call_of:  # evidence naming attempts only: their calls
            rows[call_of[aid].anchor] = call_of[aid]
    for row in rows.values():
        row.verdict = _worse(row.verdict, ev.verdict)
        if check not in row.cited_by:
            row.cited_by.append(check)
