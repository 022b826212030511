"""Where each episode's time went, and what the premium lane bought: the loop view of a report.

For every episode of an agent-loop drill (:mod:`harness.episodes`) the summary and the HTML report
show route overhead, model wait, generation and tool wait (the part of it spent in marked tools in
brackets), the total, and an estimate of the same episode had every step gone to the stable lane
(its time to first token plus the same tokens at its pace, no route overhead; tool waits kept).
The headline answers the seed's question in one sentence: how much the premium lane saved per
episode at p50, and how much route overhead the fault windows cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from ..checks._calls import percentile
from ..episodes import COMPONENTS, Episode, episodes, estimate_on, pacing_of, stable_lane
from ..journal import Journal

__all__ = ["Breakdown", "EpisodeRow", "breakdown", "html_section", "markdown_lines", "text_table"]

LABELS = {"route": "route overhead", "model_wait": "model wait", "generation": "generation", "tool_wait": "tool wait"}
COLOURS = {"route": "#d9534f", "model_wait": "#f0ad4e", "generation": "#5cb85c", "tool_wait": "#5bc0de"}


@dataclass
class EpisodeRow:
    """One episode as the reports show it (seconds in the journal's time)."""

    key: str
    steps: int
    lanes: list[str]
    outcome: str  # final | restarted | unfinished
    parts: dict[str, float]
    total: float
    tool_marked: float
    estimate: float | None
    step_parts: list[tuple[str, dict[str, float]]] = field(default_factory=list)  # (lane, components)

    @property
    def saved(self) -> float | None:
        return None if self.estimate is None else self.estimate - self.total

    def to_json(self) -> dict[str, Any]:
        return {
            "episode": self.key,
            "steps": self.steps,
            "lanes": self.lanes,
            "outcome": self.outcome,
            **{k: round(v, 6) for k, v in self.parts.items()},
            "total": round(self.total, 6),
            "tool_marked": round(self.tool_marked, 6),
            "stable_only_estimate": None if self.estimate is None else round(self.estimate, 6),
        }


@dataclass
class Breakdown:
    rows: list[EpisodeRow]
    stable: str | None
    route_in_faults: float
    windows: list[tuple[str, float, float]]

    def headline(self) -> str:
        finals = [r for r in self.rows if r.outcome == "final"]
        saved = [r.saved for r in finals if r.saved is not None]
        bits = []
        if saved and self.stable:
            s = percentile(saved, 50)
            est = percentile([r.estimate for r in finals if r.estimate is not None], 50)  # type: ignore[misc]
            act = percentile([r.total for r in finals], 50)
            verb = "saved" if s >= 0 else "lost"
            bits.append(
                f"the premium lane {verb} {abs(s):.1f} s per episode at p50 against {self.stable} only "
                f"({act:.1f} s against an estimated {est:.1f} s)"
            )
        elif not self.stable:
            bits.append("no stable-only estimate (the drill did not record the lanes' pacing)")
        if self.windows:
            names = ", ".join(f"{n} {a:g}-{b:g} s" for n, a, b in self.windows[:3])
            bits.append(f"cost {self.route_in_faults:.1f} s of route overhead during the fault windows ({names})")
        else:
            total = sum(r.parts.get("route", 0.0) for r in self.rows)
            bits.append(f"cost {total:.1f} s of route overhead in all")
        return "; ".join(bits) if bits else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "stable_lane": self.stable,
            "headline": self.headline(),
            "route_in_fault_windows": round(self.route_in_faults, 6),
            "episodes": [r.to_json() for r in self.rows],
        }


def _windows(journal: Journal) -> list[tuple[str, float, float]]:
    """Fault windows (name, open, close) from the journal's marks."""
    out = []
    closes = journal.marks("fault_window_close")
    for m in journal.marks("fault_window_open"):
        name = str(m.detail.get("fault") or m.detail.get("name") or "fault")
        end = next((c.t for c in closes if c.t >= m.t and c.lane == m.lane and c.detail == m.detail), None)
        out.append((name, m.t, end if end is not None else float("inf")))
    return out


def _row(ep: Episode, stable: str | None, pacing: dict[str, dict[str, float]]) -> EpisodeRow:
    m = ep.metrics()
    est = estimate_on(ep, stable, pacing) if stable else None
    outcome = "final" if ep.final else "restarted" if ep.superseded_by else "unfinished"
    steps = [(s.served.lane if s.served else s.attempts[-1].lane, s.metrics()) for s in ep.steps]
    return EpisodeRow(
        ep.key,
        len(ep.steps),
        ep.lanes,
        outcome,
        {k: m.get(k, 0.0) for k in COMPONENTS},
        m.get("total", 0.0),
        m.get("tool_marked", 0.0),
        est.estimated if est is not None else None,
        steps,
    )


def breakdown(journal: Journal) -> Breakdown | None:
    """The loop view of ``journal``, or None when it is no agent loop (no episode of two steps)."""
    eps = episodes(journal)
    if not any(len(e.steps) > 1 for e in eps):
        return None
    pacing, order = pacing_of(journal)
    stable = stable_lane(pacing, order)
    windows = _windows(journal)
    in_faults = sum(
        s.metrics().get("route", 0.0) for e in eps for s in e.steps if any(a <= s.t_start < b for _, a, b in windows)
    )
    return Breakdown([_row(e, stable, pacing) for e in eps], stable, in_faults, windows)


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


HEADER = ("episode", "steps", "lanes", "route", "model wait", "generation", "tool wait", "total", "stable only")


def _lanes(r: EpisodeRow) -> str:
    """The lane of each step, in order, runs shortened: ``ultraspeed×2 stable×2``."""
    out: list[list[Any]] = []
    for lane, _ in r.step_parts:
        if out and out[-1][0] == lane:
            out[-1][1] += 1
        else:
            out.append([lane, 1])
    return " ".join(f"{lane}×{n}" if n > 1 else lane for lane, n in out)


def text_table(b: Breakdown, *, max_rows: int = 20) -> list[tuple[str, ...]]:
    """Rows of the per-episode table (the header first); tool wait shows marked tool time in brackets."""
    rows: list[tuple[str, ...]] = [HEADER]
    for r in b.rows[:max_rows]:
        tool = _s(r.parts["tool_wait"]) + (f" ({r.tool_marked:.2f})" if r.tool_marked else "")
        key = r.key + ("" if r.outcome == "final" else f" {r.outcome}")
        cells = (_s(r.parts[k]) for k in ("route", "model_wait", "generation"))
        rows.append((key, str(r.steps), _lanes(r), *cells, tool, _s(r.total), _s(r.estimate)))
    return rows


def markdown_lines(b: Breakdown) -> list[str]:
    rows = text_table(b)
    out = ["", "#### Episodes", "", b.headline() + ".", ""]
    out.append("| " + " | ".join(rows[0]) + " |")
    out.append("| " + " | ".join("---" for _ in rows[0]) + " |")
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if len(b.rows) > len(rows) - 1:
        out.append(f"\n… {len(b.rows) - len(rows) + 1} more episodes in the report")
    return out


def html_section(b: Breakdown | None) -> str:
    """The episodes section of the HTML report: one row per episode, each step a bar split into
    its four components (widths in proportion to seconds), then the stable-only estimate."""
    if b is None:
        return ""
    longest = max([r.total for r in b.rows] + [r.estimate or 0.0 for r in b.rows] + [1e-9])
    legend = "".join(
        f'<span><i style="display:inline-block;width:10px;height:10px;background:{COLOURS[k]}"></i> {LABELS[k]}</span>'
        for k in COMPONENTS
    )
    rows = []
    for r in b.rows:
        segs = []
        for lane, parts in r.step_parts:
            for k in COMPONENTS:
                w = 100.0 * parts.get(k, 0.0) / longest
                if w > 0:
                    tip = f"{lane}: {LABELS[k]} {parts.get(k, 0.0):.3f} s"
                    segs.append(
                        f'<i title="{escape(tip)}" style="display:inline-block;height:14px;width:{w:.3f}%;'
                        f'background:{COLOURS[k]}"></i>'
                    )
            segs.append('<i style="display:inline-block;height:14px;width:1px;background:#333"></i>')
        est = ""
        if r.estimate is not None:
            est = (
                f'<div style="height:4px;width:{100.0 * r.estimate / longest:.3f}%;background:#999" '
                f'title="{escape(b.stable or "")} only: {r.estimate:.3f} s"></div>'
            )
        cells = "".join(f"<td>{escape(c)}</td>" for c in text_table(Breakdown([r], b.stable, 0.0, []))[1])
        rows.append(
            f'<tr id="episode-{escape(r.key)}">{cells}<td style="min-width:320px">{"".join(segs)}{est}</td></tr>'
        )
    head = "".join(f"<th>{escape(h)}</th>" for h in (*HEADER, "steps: route | model wait | generation | tool wait"))
    return (
        f'<h2>Episodes</h2><div class="sub" id="episodes-headline">{escape(b.headline())}.</div>'
        f'<div class="legend">{legend}<span>grey: the same episode on {escape(b.stable or "-")} only '
        "(estimate)</span></div>"
        f'<div class="scroll"><table id="episodes"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
