"""The HTML report: one self-contained file that answers "what went wrong, where".

It opens on the checks that failed or could not decide, each problem linked to the calls and
attempts it cites; one click on a link lands on the timeline with that call and its attempts
selected, and everything a failing check cites is already outlined there by its verdict. Below:
the latency of every call over drill time, the episodes of agent loops (when there are any), the
checks that passed (collapsed), every call with its attempts, and every attempt. Times are in
profile seconds; the seed and the time scale are in the header, so a run can be replayed.

No external scripts, styles or fonts: it works offline and straight out of a CI artifact.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any

from ..checks import CheckResult, Evidence, Report, Verdict
from ..journal import Journal
from ..jsonl import dumps
from ..redact import redact_text
from .episodes import html_section
from .model import CallRow, DrillModel, build_model
from .svg import STATE_COLOURS, VERDICT_COLOURS, latency_svg, timeline_svg

__all__ = ["render_html", "write_html_report"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
.sub{color:#5b6475;margin-bottom:6px}
.verdict{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600;font-size:13px}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:#5b6475}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}
.legend i.vfail{background:#fff;border:2.5px solid #b3001b;box-sizing:border-box}
.legend i.vunknown{background:#fff;border:2px dashed #c98a00;box-sizing:border-box}
svg text{font:11px system-ui,sans-serif;fill:#3a4150}
svg text.muted{fill:#8a92a3}
svg text.axis-label{font-weight:600}
.att:hover rect,.att.hl rect{stroke:#111;stroke-width:1.5}
.call:hover,.call.hl{stroke:#111;stroke-width:1.5}
.att.sel rect,.call.sel,.pt.sel{stroke:#0b57d0 !important;stroke-width:3 !important}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4;vertical-align:top}
th{background:#f6f7f9;position:sticky;top:0}
tr:target,tr.sel,details.sel>summary{background:#fff6d6}
.check{border:1px solid #e3e6ec;border-radius:8px;padding:10px 14px;margin:10px 0}
.check.fail{border-left:5px solid #b3001b}.check.unknown{border-left:5px solid #c98a00}
.check h3{margin:0 0 4px;font-size:15px}
.ev{font-size:12.5px;color:#3a4150;margin:3px 0 3px 14px}
.ev.pass{color:#6b7385}
.ev b.fail{color:#b3001b}.ev b.unknown{color:#a06e00}
details summary{cursor:pointer}
details.call-detail{border-bottom:1px solid #eef0f4;padding:3px 0}
details.call-detail table{margin:4px 0 8px 18px;width:auto}
.st{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:11.5px}
code{background:#f3f4f7;padding:0 4px;border-radius:3px}
.muted{color:#8a92a3}
.interrupted{background:#fff6d6;border:1px solid #e0a526;border-radius:6px;padding:6px 12px;margin:8px 0}
"""

JS = """
(function(){
function byCall(c){return document.querySelectorAll('[data-call="'+c+'"]');}
document.querySelectorAll('.call[data-call]').forEach(function(el){
  el.addEventListener('mouseenter',function(){byCall(el.getAttribute('data-call')).forEach(function(a){a.classList.add('hl')});});
  el.addEventListener('mouseleave',function(){document.querySelectorAll('.hl').forEach(function(a){a.classList.remove('hl')});});
});
function select(){
  document.querySelectorAll('.sel').forEach(function(e){e.classList.remove('sel')});
  var id=decodeURIComponent(location.hash.slice(1)); if(!id)return;
  var el=document.getElementById(id); if(!el)return;
  el.classList.add('sel');
  var c=el.getAttribute('data-call'); if(c){byCall(c).forEach(function(e){e.classList.add('sel')});}
  for(var p=el;p;p=p.parentElement){if(p.tagName==='DETAILS')p.open=true;}
  el.scrollIntoView({block:'center'});
}
window.addEventListener('hashchange',select); select();
})();
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}s"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _badge(v: Verdict | str) -> str:
    v = Verdict(v)
    return f'<span class="verdict" style="background:{VERDICT_COLOURS[v.value]}">{v.value.upper()}</span>'


def _state_badge(state: str) -> str:
    return f'<span class="st" style="background:{STATE_COLOURS.get(state, "#999")}">{_e(state)}</span>'


# -- checks -------------------------------------------------------------------------------------
def _evidence(ev: Evidence, m: DrillModel) -> str:
    mb = ""
    if ev.measured is not None:
        mb = f" — measured <code>{_e(_num(ev.measured))}</code>"
    if ev.bound is not None:
        mb += f" vs bound <code>{_e(_num(ev.bound))}</code>"
    where = []
    row = m.call_for(ev.call)
    if row is not None:
        where.append(f'call <a class="cite" href="#tl-{row.anchor}">{_e(ev.call)}</a>')
    elif ev.call:
        where.append(f"call {_e(ev.call)}")
    if ev.lane:
        where.append(f"lane {_e(ev.lane)}")
    if ev.t is not None:
        where.append(f"t={ev.t:.3f}s")
    known = {a.id for a in m.attempts}
    links = [f'<a class="cite" href="#tl-{_e(a)}">{_e(a)}</a>' if a in known else _e(a) for a in ev.attempts[:12]]
    if len(ev.attempts) > 12:
        links.append(f"… {len(ev.attempts) - 12} more")
    if links:
        where.append("attempts " + " ".join(links))
    return (
        f'<div class="ev {ev.verdict.value}"><b class="{ev.verdict.value}">[{ev.verdict.value}]</b> '
        f"{_e(ev.what)}{mb}{' · ' + ' · '.join(where) if where else ''}</div>"
    )


def _check(r: CheckResult, m: DrillModel, *, open_: bool) -> str:
    params = ", ".join(f"{k}={v}" for k, v in r.params.items() if v is not None)
    head = f"{_badge(r.verdict)} {_e(r.name)} <span class='muted'>{_e(params)}</span>"
    problems = r.problems()
    passing = [e for e in r.evidence if e.verdict is Verdict.PASS]
    items = [_evidence(e, m) for e in problems[:60]]
    if len(problems) > 60:
        items.append(f'<div class="ev muted">… and {len(problems) - 60} more problems</div>')
    if passing:
        shown = "".join(_evidence(e, m) for e in passing[:200])
        more = f'<div class="ev muted">… and {len(passing) - 200} more</div>' if len(passing) > 200 else ""
        items.append(f"<details><summary class='muted'>{len(passing)} passing item(s)</summary>{shown}{more}</details>")
    if open_:
        return (
            f'<div class="check {r.verdict.value}" id="check-{_e(r.name)}"><h3>{head}</h3>'
            f"<div>{_e(r.summary)}</div>{''.join(items)}</div>"
        )
    return (
        f'<details class="check {r.verdict.value}" id="check-{_e(r.name)}"><summary><b>{head}</b> — '
        f"{_e(r.summary)}</summary>{''.join(items)}</details>"
    )


def _problems(m: DrillModel) -> str:
    if m.report is None or not m.report.results:
        return '<p class="muted">No checks were evaluated.</p>'
    bad = [r for r in m.results() if r.verdict is not Verdict.PASS]
    if not bad:
        return f"<p>Every check passed ({len(m.report.results)}).</p>"
    return "\n".join(_check(r, m, open_=True) for r in bad)


def _passed(m: DrillModel) -> str:
    good = [r for r in m.results() if r.verdict is Verdict.PASS]
    if not good:
        return '<p class="muted">None.</p>'
    return "\n".join(_check(r, m, open_=False) for r in good)


# -- calls and attempts -------------------------------------------------------------------------
def _chars(row: CallRow) -> str:
    if row.accepted_chars is None and row.canonical_chars is None:
        return "-"
    acc = "-" if row.accepted_chars is None else str(row.accepted_chars)
    can = "?" if row.canonical_chars is None else str(row.canonical_chars)
    return f"{acc} / {can}"


def _call_details(m: DrillModel) -> str:
    if not m.calls:
        return '<p class="muted">No calls.</p>'
    out = []
    for c in m.calls:
        call = c.view.call
        verdict = f" {_badge(c.verdict)} cited by {_e(', '.join(c.cited_by))}" if c.verdict is not None else ""
        mt = c.metrics
        err = f" — {_e(call.error_type)}: {_e(call.error)}" if call is not None and call.error else ""
        summary = (
            f"<code>{_e(c.key)}</code> {_state_badge(c.state)}{verdict} · {c.t_start:.3f}s → {_fmt(c.t_end)}"
            f" · lane {_e(c.lane or '-')} · {len(c.view.attempts)} attempt(s) · ttft {_fmt(mt.get('ttft'))}"
            f" · generation {_fmt(mt.get('generation'))} · total {_fmt(mt.get('total'))}"
            f" · text accepted/canonical chars {_chars(c)}{err}"
        )
        rows = "".join(
            f'<tr><td><a href="#{_e(a.id)}">{_e(a.id)}</a></td><td>{_e(a.lane)}</td><td>{a.t_start:.3f}</td>'
            f"<td>{_e(a.status)}</td><td>{_e(a.end_reason)}</td><td>{_e(a.fault_name or '')}</td>"
            f"<td>{a.tokens}{'/' + str(a.expected_tokens) if a.expected_tokens is not None else ''}</td>"
            f"<td>{a.text_chars}</td><td>{_e(', '.join(m.attempt_cited_by.get(a.id, [])))}</td></tr>"
            for a in c.view.attempts
        )
        table = (
            "<table><tr><th>attempt</th><th>lane</th><th>start</th><th>status</th><th>end reason</th>"
            f"<th>fault</th><th>tokens</th><th>text chars</th><th>cited by</th></tr>{rows}</table>"
            if rows
            else '<p class="muted">no attempt was tied to this call</p>'
        )
        opened = " open" if c.verdict is not None else ""
        out.append(
            f'<details class="call-detail" id="{c.anchor}"{opened}><summary>{summary}</summary>{table}</details>'
        )
    return "\n".join(out)


def _attempt_rows(m: DrillModel) -> str:
    call_of = {a.id: c for c in m.calls for a in c.view.attempts}
    rows = []
    for a in m.attempts:
        err = ""
        if a.error:
            err = a.error.get("type") or a.error.get("code") or a.error.get("message") or ""
        c = call_of.get(a.id)
        call = f'<a href="#{c.anchor}">{_e(c.key)}</a>' if c is not None else _e(a.call_id or "")
        v = m.attempt_verdicts.get(a.id)
        rows.append(
            f'<tr id="{_e(a.id)}"><td><a href="#tl-{_e(a.id)}">{_e(a.id)}</a></td><td>{_e(a.lane)}</td>'
            f"<td>{call}</td><td>{_e(a.retry_count if a.retry_count is not None else '')}</td>"
            f"<td>{a.t_start:.3f}</td><td>{_e(_fmt(a.ttft))}</td><td>{_e(_fmt(a.t_end))}</td><td>{_e(a.status)}</td>"
            f"<td>{_e(a.end_reason)}</td><td>{_e(a.fault_name or '')}</td><td>{a.tokens}</td>"
            f"<td>{_e(_fmt(a.retry_after) if a.retry_after is not None else '')}</td><td>{_e(err)}</td>"
            f"<td>{_badge(v) if v is not None else ''}</td></tr>"
        )
    return "\n".join(rows)


def _episodes(m: DrillModel) -> str:
    """Agent-loop episodes (route overhead / model wait / generation / tool wait per step, and the
    stable-only estimate): :mod:`harness.report.episodes`; left out when no loop ran."""
    return html_section(m.episodes)


# -- page ---------------------------------------------------------------------------------------
def _facts(m: DrillModel, journal: Journal) -> str:
    when = _dt.datetime.fromtimestamp(journal.wall0, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    tried = {a.lane for a in m.attempts}
    untried = [lane for lane in m.lanes if lane not in tried]
    scale = f"time scale {m.time_scale:g}" + (
        f" (the drill ran {1 / m.time_scale:g}× faster; every time here is in profile seconds)"
        if m.time_scale != 1.0
        else " (profile seconds are real seconds)"
    )
    bits = [
        f"profile <b>{_e(m.profile or '-')}</b>",
        f"seed <b>{_e(m.seed if m.seed is not None else '-')}</b>",
        scale,
        f"started {when}",
    ]
    stats = (
        f"{len(m.calls)} call(s), {len(m.attempts)} attempt(s) on {len(m.lanes)} lane(s)"
        + (f" ({', '.join(untried)} never tried)" if untried else "")
        + f"; {sum(1 for a in m.attempts if a.fault_name)} with a fault applied"
    )
    return f'<div class="sub" id="facts">{" · ".join(bits)}</div><div class="sub">{_e(stats)}</div>'


def _legend() -> str:
    states = "".join(f'<span><i style="background:{c}"></i>{k}</span>' for k, c in STATE_COLOURS.items())
    return (
        f'<div class="legend">{states}'
        '<span><i class="vfail"></i>cited by a failed check</span>'
        '<span><i class="vunknown"></i>cited by an unknown check</span>'
        '<span><i style="background:#d64545;opacity:.15"></i>fault window / lane down</span>'
        '<span><i style="background:#111;height:3px"></i>fault applied</span>'
        "<span>pale part: before the first token</span></div>"
    )


def _axis_note(m: DrillModel) -> str:
    note = f"Axis: profile seconds since the drill started (seed {m.seed}, time scale {m.time_scale:g})"
    if m.origin > 0:
        note += f"; the first {m.origin:g}s, before anything happened, are left out"
    return f'<div class="sub" id="axis-note">{_e(note)}.</div>'


def _interrupted(journal: Journal) -> str:
    """A banner when the drill did not run to its end: its verdicts judge partial evidence."""
    why = journal.interruption()
    if why is None:
        return ""
    if why == "cut short":
        text = (
            "This drill was cut short: its journal has no drill_stop (the drill's process died). "
            "Attempts open then are missing; the checks judge what was journaled."
        )
    else:
        text = (
            f"This drill was interrupted ({why}): the agent was stopped before it finished. Attempts open "
            "then are journaled with outcome unknown; the checks judge the evidence up to then."
        )
    return f'<div class="interrupted" id="interrupted">{_e(text)}</div>'


def render_html(
    journal: Journal, report: Report | None = None, *, title: str = "routechaos drill", profile: Any = None
) -> str:
    """The report as one HTML string (``profile``: its lanes get rows even if never tried)."""
    m = build_model(journal, report, profile)
    verdict = report.verdict.value if report is not None else "unknown"
    desc = ""
    if profile is not None:
        desc = f'<div class="sub">{_e(" ".join(str(getattr(profile, "description", "")).split()))}</div>'
    if m.profile:
        title = f"routechaos drill: {m.profile}"
    data = {
        "verdict": verdict,
        "profile": m.profile,
        "seed": m.seed,
        "time_scale": m.time_scale,
        "lanes": m.lanes,
        "calls": [{"id": c.key, "anchor": c.anchor, "state": c.state, "verdict": c.verdict} for c in m.calls],
        "report": report.to_json() if report else None,
    }
    # JSON in a script element: no "<" at all, so no text a call carried can close or nest a script
    blob = dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")  # strict JSON
    n_bad = sum(r.verdict is not Verdict.PASS for r in m.results())
    episodes = _episodes(m)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>{_e(title)} <span class="verdict" id="verdict"
 style="background:{VERDICT_COLOURS[verdict]}">{verdict.upper()}</span></h1>
{desc}{_interrupted(journal)}{_facts(m, journal)}
<h2>{"What went wrong" if n_bad else "Checks"}</h2><div id="checks">{_problems(m)}</div>
<h2>Timeline</h2>{_legend()}{_axis_note(m)}
<div class="scroll" id="timeline">{timeline_svg(m)}</div>
<h2>Latency per call</h2><div class="legend"><span>● total</span><span>■ time to first token</span>
<span>◆ generation</span><span>colour: the call's state; outline: the verdict that cites it</span></div>
<div class="scroll" id="latency">{latency_svg(m)}</div>
{episodes}
<h2>Checks that passed</h2><div id="passed">{_passed(m)}</div>
<h2>Calls</h2><div id="calls">{_call_details(m)}</div>
<h2>Attempts</h2>
<div class="scroll"><table id="attempts"><thead><tr><th>id</th><th>lane</th><th>call</th><th>retry</th><th>start</th>
<th>ttft</th><th>end</th><th>status</th><th>end reason</th><th>fault</th><th>tokens</th><th>retry-after</th>
<th>error</th><th>verdict</th></tr></thead>
<tbody>{_attempt_rows(m)}</tbody></table></div>
<script type="application/json" id="routechaos-data">{blob}</script>
<script>{JS}</script>
</body></html>
"""


def write_html_report(
    journal: Journal, report: Report | None, path: str | Path, *, profile: Any = None, title: str = "routechaos drill"
) -> Path:
    """Write the report to ``path`` (directories created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # the journal is redacted already; this also covers a journal written before redaction grew
    p.write_text(redact_text(render_html(journal, report, profile=profile, title=title)), encoding="utf-8")
    return p
