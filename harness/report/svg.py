"""The report's two pictures, as inline SVG: the timeline and the latency view.

Timeline: a row of calls on top, then one row per lane of the profile (a lane never tried still
gets its row), packed into sub-rows where attempts overlap. An attempt is a bar from its start,
through its first token, to its end, filled by outcome (pale before the first token); a call is
filled by its state, and a call accepted truncated is never green. Whatever a failing or unknown
check cites is outlined by that verdict, so the reader sees *where* it went wrong, not only what
ended badly. Fault windows and lane outages are shaded behind.

Latency: per call, over drill time on the same axis, its total time, its time to first token and
its generation time, with the fault windows shaded: what a fault cost, call by call.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from ..checks import Verdict
from ..journal import Attempt
from .model import CallRow, DrillModel, nice_step

__all__ = ["STATE_COLOURS", "VERDICT_COLOURS", "latency_svg", "nice_step", "timeline_svg"]

W, LEFT, RIGHT, ROW_H, BAR_H, GAP = 1100, 130, 20, 18, 12, 3
STATE_COLOURS = {"ok": "#2e9d58", "truncated": "#8e44ad", "error": "#d64545", "unknown": "#e0a526"}
VERDICT_COLOURS = {"pass": "#2e9d58", "fail": "#b3001b", "unknown": "#c98a00"}


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x))


def _fmt(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}s"


def _verdict_attrs(v: Verdict | None) -> str:
    """Outline by verdict: solid dark red for a failure, dashed amber for unknown."""
    if v is Verdict.FAIL:
        return f' stroke="{VERDICT_COLOURS["fail"]}" stroke-width="2.5"'
    if v is Verdict.UNKNOWN:
        return f' stroke="{VERDICT_COLOURS["unknown"]}" stroke-width="2" stroke-dasharray="3 2"'
    return ""


def _vclass(v: Verdict | None) -> str:
    return f" v-{v.value}" if v is not None else ""


def _pack(items: list[tuple[float, float]]) -> list[int]:
    """Greedy interval packing: a sub-row index per (start, end), so overlapping bars don't hide."""
    ends: list[float] = []
    out = []
    for start, end in items:
        for i, e in enumerate(ends):
            if e <= start:
                ends[i] = end
                out.append(i)
                break
        else:
            ends.append(end)
            out.append(len(ends) - 1)
    return out


def _axis(x: Callable[[float], float], origin: float, horizon: float, y_top: int, label: str) -> list[str]:
    step = nice_step(horizon - origin)
    out = [f'<text x="8" y="12" class="axis-label">{_e(label)}</text>']
    t, n = origin, 0
    while t <= horizon + 1e-9 and n < 60:
        out.append(f'<line x1="{x(t):.1f}" y1="{y_top}" x2="{x(t):.1f}" y2="{{H}}" stroke="#eef0f4"/>')
        out.append(f'<text x="{x(t):.1f}" y="12" text-anchor="middle">{t:g}s</text>')
        n += 1
        t = origin + n * step
    return out


def _scale(m: DrillModel) -> tuple[float, Callable[[float], float]]:
    """Pixels per profile second, and the x of a time, on the axis from ``m.origin`` to ``m.horizon``."""
    scale = (W - LEFT - RIGHT) / max(1e-9, m.horizon - m.origin)

    def x(t: float) -> float:
        return LEFT + max(0.0, t - m.origin) * scale

    return scale, x


def timeline_svg(m: DrillModel) -> str:
    """The timeline: calls, then one row per lane; ids ``tl-<call anchor>`` and ``tl-<attempt id>``."""
    horizon = m.horizon
    scale, x = _scale(m)

    rows: list[str] = []
    y = 24
    if m.calls:
        subs = _pack([(c.t_start, c.t_end if c.t_end is not None else horizon) for c in m.calls])
        rows.append(f'<text x="8" y="{y + BAR_H - 1}" font-weight="600">calls</text>')
        for c, sub in zip(m.calls, subs, strict=True):
            rows.append(_call_bar(c, x, scale, y + sub * (BAR_H + GAP), horizon))
        y += (max(subs) + 1) * (BAR_H + GAP) + 10
    call_anchor = {a.id: c.anchor for c in m.calls for a in c.view.attempts}
    for lane in m.lanes:
        attempts = [a for a in m.attempts if a.lane == lane]
        subs = _pack([(a.t_start, a.t_end if a.t_end is not None else a.t_start) for a in attempts])
        height = (max(subs, default=0) + 1) * (BAR_H + GAP) + 6
        for w in m.windows:
            if w.lane in (lane, None):
                rows.append(
                    f'<rect class="window" x="{x(w.start):.1f}" y="{y - 2}" '
                    f'width="{max(1.0, (w.end - max(w.start, m.origin)) * scale):.1f}" height="{height}" '
                    f'fill="#d64545" fill-opacity="0.08"><title>{_e(w.label)} {w.start:.2f}s to '
                    f"{'(still open)' if w.open_ended else f'{w.end:.2f}s'}</title></rect>"
                )
        rows.append(f'<text x="8" y="{y + BAR_H - 1}" font-weight="600" class="lane-label">{_e(lane)}</text>')
        if not attempts:
            rows.append(f'<text x="{LEFT + 4}" y="{y + BAR_H - 1}" class="muted">no attempts</text>')
        for a, sub in zip(attempts, subs, strict=True):
            v = m.attempt_verdicts.get(a.id)
            rows.append(_attempt_bar(a, x, scale, y + sub * (BAR_H + GAP), horizon, call_anchor.get(a.id, ""), v))
        y += height + 8
    h = y + 4
    axis = _axis(x, m.origin, horizon, 16, "profile s")
    body = "\n".join(t.replace("{H}", str(h)) for t in axis) + "\n" + "\n".join(rows)
    return (
        f'<svg id="timeline-svg" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" '
        f'viewBox="0 0 {W} {h}">{body}</svg>'
    )


def _call_bar(c: CallRow, x: Callable[[float], float], scale: float, cy: int, horizon: float) -> str:
    end = c.t_end if c.t_end is not None else horizon
    colour = STATE_COLOURS.get(c.state, "#999")
    call = c.view.call
    tip = f"call {c.key}: {c.state}" + (f" via {c.lane}" if c.lane else "")
    if call is not None and call.error:
        tip += f" ({call.error_type}: {call.error})"
    if c.cited_by:
        tip += f" — cited by {', '.join(c.cited_by)}"
    outline = _verdict_attrs(c.verdict) or f' stroke="{colour}"'
    return (
        f'<a href="#{c.anchor}"><rect id="tl-{c.anchor}" class="call st-{c.state}{_vclass(c.verdict)}" '
        f'data-call="{c.anchor}" x="{x(c.t_start):.1f}" y="{cy}" width="{max(3.0, (end - c.t_start) * scale):.1f}" '
        f'height="{BAR_H}" rx="2" fill="{colour}" fill-opacity="{0.8 if c.state != "ok" else 0.45}"{outline}>'
        f"<title>{_e(tip)}</title></rect></a>"
    )


def _attempt_bar(
    a: Attempt, x: Callable[[float], float], scale: float, ay: int, horizon: float, call: str, v: Verdict | None
) -> str:
    end = a.t_end if a.t_end is not None else horizon
    colour = STATE_COLOURS.get(a.outcome, "#999")
    first = a.t_first_token if a.t_first_token is not None else end
    toks = f"{a.tokens}/{a.expected_tokens}" if a.expected_tokens is not None else str(a.tokens)
    tip = (
        f"{a.id} {a.lane} status={a.status} {a.end_reason}"
        + (f" fault={a.fault_name}" if a.fault_name else "")
        + f" start={a.t_start:.3f}s first={_fmt(a.t_first_token)} end={_fmt(a.t_end)} tokens={toks}"
        + (f" retry-after={a.retry_after:.3f}s" if a.retry_after is not None else "")
    )
    cls = f"att o-{a.outcome}{_vclass(v)}"
    parts = [
        f'<a href="#{a.id}"><g id="tl-{a.id}" class="{cls}" data-call="{call}"><title>{_e(tip)}</title>',
        f'<rect x="{x(a.t_start):.1f}" y="{ay}" width="{max(4.0, (first - a.t_start) * scale):.1f}" '
        f'height="{BAR_H}" fill="{colour}" fill-opacity="{0.35 if a.outcome == "ok" else 0.8}"/>',
    ]
    if end > first:
        parts.append(
            f'<rect x="{x(first):.1f}" y="{ay}" width="{max(1.0, (end - first) * scale):.1f}" '
            f'height="{BAR_H}" fill="{colour}"/>'
        )
    if a.fault_name:  # a dark tick under the bar: this attempt had a fault applied
        parts.append(
            f'<rect x="{x(a.t_start):.1f}" y="{ay + BAR_H}" width="{max(4.0, (end - a.t_start) * scale):.1f}" '
            f'height="2.5" fill="#111"/>'
        )
    if v is not None:  # the verdict's outline around the whole bar
        parts.append(
            f'<rect class="outline" x="{x(a.t_start) - 1.5:.1f}" y="{ay - 1.5}" '
            f'width="{max(4.0, (end - a.t_start) * scale) + 3:.1f}" height="{BAR_H + 3}" fill="none"'
            f"{_verdict_attrs(v)}/>"
        )
    parts.append("</g></a>")
    return "".join(parts)


# -- latency ------------------------------------------------------------------------------------
LAT_H, LAT_TOP, LAT_BOTTOM = 260, 24, 28
SERIES = (("total", "circle"), ("ttft", "square"), ("generation", "diamond"))


def _marker(shape: str, cx: float, cy: float, attrs: str) -> str:
    if shape == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4"{attrs}/>'
    if shape == "square":
        return f'<rect x="{cx - 3.5:.1f}" y="{cy - 3.5:.1f}" width="7" height="7"{attrs}/>'
    return (
        f'<path d="M{cx:.1f} {cy - 5:.1f}L{cx + 5:.1f} {cy:.1f}L{cx:.1f} {cy + 5:.1f}L{cx - 5:.1f} {cy:.1f}Z"{attrs}/>'
    )


def latency_svg(m: DrillModel) -> str:
    """Total, TTFT and generation per call (profile seconds) over the call's start time. Every call
    has a ``total`` point; a call that never recorded an end is drawn hollow at the top."""
    horizon = m.horizon
    scale, x = _scale(m)

    values = [v for c in m.calls for v in c.metrics.values()]
    top = max([*values, 0.001]) * 1.1
    plot_h = LAT_H - LAT_TOP - LAT_BOTTOM

    def y(v: float) -> float:
        return LAT_TOP + plot_h - min(v, top) / top * plot_h

    out = _axis(x, m.origin, horizon, LAT_TOP, "profile s")
    step = nice_step(top, 5)
    k = 0
    while k * step <= top + 1e-9 and k < 40:
        v = k * step
        out.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{W - RIGHT}" y2="{y(v):.1f}" stroke="#eef0f4"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}s</text>')
        k += 1
    for w in m.windows:
        out.append(
            f'<rect class="window" x="{x(w.start):.1f}" y="{LAT_TOP}" '
            f'width="{max(1.0, (w.end - w.start) * scale):.1f}" height="{plot_h}" fill="#d64545" '
            f'fill-opacity="0.08"><title>{_e(w.label)}'
            f"{' on ' + _e(w.lane) if w.lane else ''} {w.start:.2f}s to {w.end:.2f}s</title></rect>"
        )
    for c in m.calls:
        colour = STATE_COLOURS.get(c.state, "#999")
        cx = x(c.t_start)
        for name, shape in SERIES:
            value = c.metrics.get(name)
            if value is None and name != "total":
                continue
            hollow = value is None
            tip = f"call {c.key} {name} " + ("no end recorded" if hollow else f"{value:.3f}s") + f" ({c.state})"
            fill = "#fff" if hollow or name != "total" else colour
            attrs = f' class="pt pt-{name} st-{c.state}{_vclass(c.verdict)}" data-call="{c.anchor}" fill="{fill}"' + (
                _verdict_attrs(c.verdict) or f' stroke="{colour}" stroke-width="1.5"'
            )
            cy = LAT_TOP if hollow else y(value or 0.0)
            out.append(f'<a href="#{c.anchor}"><g>{_marker(shape, cx, cy, attrs)}<title>{_e(tip)}</title></g></a>')
    if not m.calls:
        out.append(f'<text x="{LEFT + 4}" y="{LAT_TOP + 20}" class="muted">no calls</text>')
    body = "\n".join(s.replace("{H}", str(LAT_TOP + plot_h)) for s in out)
    return (
        f'<svg id="latency-svg" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{LAT_H}" '
        f'viewBox="0 0 {W} {LAT_H}">{body}</svg>'
    )
