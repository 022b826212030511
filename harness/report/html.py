"""The HTML report: one self-contained file a person can open and read at a glance.

A timeline shows one row per lane (packed into sub-rows where attempts overlap): each attempt is a
bar from its start, through its first token, to its end, coloured by outcome; the part before the
first token is drawn pale, so waiting, retrying, falling back and recovering are visible as
shapes. Fault windows and lane outages are shaded behind the bars. Calls sit in their own row on
top; hovering a call highlights its attempts. Below: every check with its verdict and evidence,
and the table of attempts. No external scripts, styles or fonts: it works offline and in CI
artifacts.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..checks import Report, Verdict
from ..journal import Attempt, Call, Journal

__all__ = ["render_html", "write_html_report"]

W, LEFT, RIGHT, ROW_H, BAR_H = 1100, 130, 20, 18, 12
COLOURS = {"ok": "#2e9d58", "error": "#d64545", "unknown": "#e0a526"}
VERDICT_COLOURS = {"pass": "#2e9d58", "fail": "#d64545", "unknown": "#e0a526"}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ec;padding-bottom:4px}
.sub{color:#5b6475;margin-bottom:14px}
.verdict{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600;font-size:13px}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:#5b6475}
.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle;border-radius:2px}
svg text{font:11px system-ui,sans-serif;fill:#3a4150}
.att:hover,.att.hl{stroke:#111;stroke-width:1.5}
.call:hover{stroke:#111;stroke-width:1.5}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4;vertical-align:top}
th{background:#f6f7f9;position:sticky;top:0}
tr:target{background:#fff6d6}
.check{border:1px solid #e3e6ec;border-radius:8px;padding:10px 14px;margin:10px 0}
.check h3{margin:0 0 4px;font-size:15px}
.ev{font-size:12.5px;color:#3a4150;margin:2px 0 2px 14px}
.ev.pass{color:#6b7385}
code{background:#f3f4f7;padding:0 4px;border-radius:3px}
.muted{color:#8a92a3}
"""

JS = """
document.querySelectorAll('[data-call]').forEach(function(el){
  el.addEventListener('mouseenter',function(){var c=el.getAttribute('data-call');
    document.querySelectorAll('.att[data-call="'+c+'"]').forEach(function(a){a.classList.add('hl')});});
  el.addEventListener('mouseleave',function(){
    document.querySelectorAll('.att.hl').forEach(function(a){a.classList.remove('hl')});});
});
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}s"


def _pack(attempts: list[Attempt]) -> list[tuple[Attempt, int]]:
    """Greedy interval packing: sub-row index per attempt so overlapping bars don't hide."""
    ends: list[float] = []
    out = []
    for a in sorted(attempts, key=lambda a: a.t_start):
        end = a.t_end if a.t_end is not None else a.t_start
        for i, e in enumerate(ends):
            if e <= a.t_start:
                ends[i] = end
                out.append((a, i))
                break
        else:
            ends.append(end)
            out.append((a, len(ends) - 1))
    return out


def _windows(journal: Journal, lanes: list[str], horizon: float) -> dict[str | None, list[tuple[float, float, str]]]:
    """Shaded intervals per lane (None: every lane) from window and outage marks."""
    pairs = {
        "fault_window_open": "fault_window_close",
        "toxic_window_open": "toxic_window_close",
        "lane_down": "lane_up",
    }
    open_at: dict[tuple[str | None, str, str], float] = {}
    out: dict[str | None, list[tuple[float, float, str]]] = {}
    for m in journal.marks():
        label = str(m.detail.get("fault") or m.detail.get("toxic") or m.kind.replace("_", " "))
        if m.kind in pairs:
            open_at[(m.lane, pairs[m.kind], label)] = m.t
        elif m.kind in pairs.values():
            start = open_at.pop((m.lane, m.kind, label), None)
            if start is not None:
                out.setdefault(m.lane, []).append((start, m.t, label))
    for (lane, _, label), start in open_at.items():
        out.setdefault(lane, []).append((start, horizon, label))
    return out


def _timeline(journal: Journal, calls: list[Call]) -> str:
    attempts = journal.attempts()
    lanes = list(dict.fromkeys(a.lane for a in attempts))
    marks = journal.marks()
    horizon = max(
        [a.t_end or a.t_start for a in attempts]
        + [c.t_end or c.t_start for c in calls]
        + [m.t for m in marks]
        + [0.001]
    )
    for lane in (m.lane for m in marks):
        if lane and lane not in lanes:
            lanes.append(lane)
    scale = (W - LEFT - RIGHT) / horizon

    def x(t: float) -> float:
        return LEFT + max(0.0, t) * scale

    rows: list[str] = []
    y = 24
    # time axis
    step = _nice_step(horizon)
    ticks = []
    t = 0.0
    while t <= horizon + 1e-9 and len(ticks) < 60:
        ticks.append(f'<line x1="{x(t):.1f}" y1="16" x2="{x(t):.1f}" y2="{{H}}" stroke="#eef0f4"/>')
        ticks.append(f'<text x="{x(t):.1f}" y="12" text-anchor="middle">{t:g}s</text>')
        t += step
    # calls row
    if calls:
        packed_calls: list[tuple[Call, int]] = []
        ends: list[float] = []
        for c in calls:
            end = c.t_end if c.t_end is not None else c.t_start
            for i, e in enumerate(ends):
                if e <= c.t_start:
                    ends[i] = end
                    packed_calls.append((c, i))
                    break
            else:
                ends.append(end)
                packed_calls.append((c, len(ends) - 1))
        n_sub = max(1, len(ends))
        rows.append(f'<text x="8" y="{y + ROW_H / 2 + 4:.0f}" font-weight="600">calls</text>')
        for c, sub in packed_calls:
            cy = y + sub * (BAR_H + 3)
            end = c.t_end if c.t_end is not None else horizon
            colour = COLOURS.get(c.outcome, "#999")
            if c.outcome == "ok" and c.complete is False:
                colour = COLOURS["error"]
            tip = (
                f"call {c.id}: {c.outcome}"
                + (f" via {c.lane}" if c.lane else "")
                + (f" ({c.error_type}: {c.error})" if c.error else "")
            )
            rows.append(
                f'<rect class="call" data-call="{_e(c.id)}" x="{x(c.t_start):.1f}" y="{cy}" '
                f'width="{max(2.0, (end - c.t_start) * scale):.1f}" height="{BAR_H}" rx="2" fill="{colour}" '
                f'fill-opacity="0.35" stroke="{colour}"><title>{_e(tip)}</title></rect>'
            )
        y += n_sub * (BAR_H + 3) + 10
    windows = _windows(journal, lanes, horizon)
    for lane in lanes:
        packed = _pack([a for a in attempts if a.lane == lane])
        n_sub = max(1, max((s for _, s in packed), default=0) + 1)
        height = n_sub * (BAR_H + 3) + 6
        for lo, hi, label in windows.get(lane, []) + windows.get(None, []):
            rows.append(
                f'<rect x="{x(lo):.1f}" y="{y - 2}" width="{max(1.0, (hi - lo) * scale):.1f}" height="{height}" '
                f'fill="#d64545" fill-opacity="0.08"><title>{_e(label)} {lo:.2f}s to {hi:.2f}s</title></rect>'
            )
        rows.append(f'<text x="8" y="{y + BAR_H - 1}" font-weight="600">{_e(lane)}</text>')
        for a, sub in packed:
            ay = y + sub * (BAR_H + 3)
            end = a.t_end if a.t_end is not None else horizon
            colour = COLOURS.get(a.outcome, "#999")
            first = a.t_first_token if a.t_first_token is not None else end
            call = a.call_id or a.fingerprint or ""
            tip = (
                f"{a.id} {a.lane} status={a.status} {a.end_reason}"
                + (f" fault={a.fault_name}" if a.fault_name else "")
                + f" start={a.t_start:.3f}s first={_fmt(a.t_first_token)} end={_fmt(a.t_end)} tokens={a.tokens}"
                + (f" retry-after={a.retry_after:.3f}s" if a.retry_after is not None else "")
            )
            rows.append(
                f'<g><a href="#{_e(a.id)}"><rect class="att" data-call="{_e(call)}" x="{x(a.t_start):.1f}" y="{ay}" '
                f'width="{max(4.0, (first - a.t_start) * scale):.1f}" height="{BAR_H}" fill="{colour}" '
                f'fill-opacity="{0.35 if a.outcome == "ok" else 0.8}" stroke="{colour}"><title>{_e(tip)}</title></rect>'
            )
            if end > first:
                rows.append(
                    f'<rect class="att" data-call="{_e(call)}" x="{x(first):.1f}" y="{ay}" '
                    f'width="{max(1.0, (end - first) * scale):.1f}" height="{BAR_H}" fill="{colour}">'
                    f"<title>{_e(tip)}</title></rect>"
                )
            if a.fault_name:  # a dark tick under the bar: this attempt had a fault applied
                rows.append(
                    f'<rect x="{x(a.t_start):.1f}" y="{ay + BAR_H}" width="{max(4.0, (end - a.t_start) * scale):.1f}" '
                    f'height="2.5" fill="#111"><title>{_e(a.fault_name)}</title></rect>'
                )
            rows.append("</a></g>")
        y += height + 8
    h = y + 4
    body = "\n".join(t.replace("{H}", str(h)) for t in ticks) + "\n" + "\n".join(rows)
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}">{body}</svg>'


def _nice_step(horizon: float) -> float:
    raw = horizon / 10
    for s in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600):
        if s >= raw:
            return float(s)
    return 1200.0


def _checks(report: Report | None) -> str:
    if report is None or not report.results:
        return '<p class="muted">No checks were evaluated.</p>'
    parts = []
    for r in report.results:
        colour = VERDICT_COLOURS[r.verdict.value]
        params = ", ".join(f"{k}={v}" for k, v in r.params.items() if v is not None)
        items = []
        ordered = r.problems() + [e for e in r.evidence if e.verdict is Verdict.PASS]
        for ev in ordered[:30]:
            links = " ".join(f'<a href="#{_e(a)}">{_e(a)}</a>' for a in ev.attempts[:8])
            mb = ""
            if ev.measured is not None:
                mb = f" — measured <code>{_e(_num(ev.measured))}</code>"
            if ev.bound is not None:
                mb += f" vs bound <code>{_e(_num(ev.bound))}</code>"
            where = " ".join(
                x for x in (f"call {ev.call}" if ev.call else "", f"lane {ev.lane}" if ev.lane else "") if x
            )
            items.append(
                f'<div class="ev {ev.verdict.value}">[{ev.verdict.value}] {_e(ev.what)}{mb}'
                f"{' · ' + _e(where) if where else ''}{' · ' + links if links else ''}</div>"
            )
        more = len(ordered) - 30
        if more > 0:
            items.append(f'<div class="ev muted">… and {more} more</div>')
        parts.append(
            f'<div class="check" id="check-{_e(r.name)}"><h3><span class="verdict" style="background:{colour}">'
            f'{r.verdict.value.upper()}</span> {_e(r.name)} <span class="muted">{_e(params)}</span></h3>'
            f"<div>{_e(r.summary)}</div>{''.join(items)}</div>"
        )
    return "\n".join(parts)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _attempt_rows(attempts: Iterable[Attempt]) -> str:
    rows = []
    for a in attempts:
        err = ""
        if a.error:
            err = a.error.get("type") or a.error.get("code") or a.error.get("message") or ""
        rows.append(
            f'<tr id="{_e(a.id)}"><td>{_e(a.id)}</td><td>{_e(a.lane)}</td><td>{_e(a.call_id or "")}</td>'
            f"<td>{_e(a.retry_count if a.retry_count is not None else '')}</td><td>{a.t_start:.3f}</td>"
            f"<td>{_e(_fmt(a.ttft))}</td><td>{_e(_fmt(a.t_end))}</td><td>{_e(a.status)}</td>"
            f"<td>{_e(a.end_reason)}</td><td>{_e(a.fault_name or '')}</td><td>{a.tokens}</td>"
            f"<td>{_e(_fmt(a.retry_after) if a.retry_after is not None else '')}</td><td>{_e(err)}</td></tr>"
        )
    return "\n".join(rows)


def render_html(
    journal: Journal, report: Report | None = None, *, title: str = "routechaos drill", profile: Any = None
) -> str:
    """The report as one HTML string."""
    attempts = journal.attempts()
    calls = journal.calls()
    verdict = report.verdict.value if report is not None else "unknown"
    when = _dt.datetime.fromtimestamp(journal.wall0, _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    desc = ""
    if profile is not None:
        desc = f'<div class="sub">{_e(getattr(profile, "description", ""))}</div>'
        title = f"routechaos drill: {getattr(profile, 'name', title)}"
    lanes = sorted({a.lane for a in attempts})
    stats = (
        f"{len(calls)} call(s), {len(attempts)} attempt(s) on {len(lanes)} lane(s); "
        f"{sum(1 for a in attempts if a.fault_name)} with a fault applied; started {when}"
    )
    legend = "".join(f'<span><i style="background:{c}"></i>{k}</span>' for k, c in COLOURS.items()) + (
        '<span><i style="background:#d64545;opacity:.15"></i>fault window / lane down</span>'
        '<span><i style="background:#111;height:3px"></i>fault applied</span>'
        "<span>pale part: before the first token</span>"
    )
    data = json.dumps({"verdict": verdict, "report": report.to_json() if report else None}, default=str)
    data = data.replace("</", "<\\/")  # JSON in a script element: it must not close the element
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>{_e(title)} <span class="verdict" id="verdict"
 style="background:{VERDICT_COLOURS[verdict]}">{verdict.upper()}</span></h1>
{desc}<div class="sub">{_e(stats)}</div>
<h2>Timeline</h2><div class="legend">{legend}</div>
<div id="timeline">{_timeline(journal, calls)}</div>
<h2>Checks</h2><div id="checks">{_checks(report)}</div>
<h2>Attempts</h2>
<table id="attempts"><thead><tr><th>id</th><th>lane</th><th>call</th><th>retry</th><th>start</th><th>ttft</th>
<th>end</th><th>status</th><th>end reason</th><th>fault</th><th>tokens</th><th>retry-after</th><th>error</th>
</tr></thead>
<tbody>{_attempt_rows(attempts)}</tbody></table>
<script type="application/json" id="routechaos-data">{data}</script>
<script>{JS}</script>
</body></html>
"""


def write_html_report(
    journal: Journal, report: Report | None, path: str | Path, *, profile: Any = None, title: str = "routechaos drill"
) -> Path:
    """Write the report to ``path`` (directories created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(journal, report, profile=profile, title=title), encoding="utf-8")
    return p
