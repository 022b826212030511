"""The loop view of the reports: per-episode breakdown, stable-only estimate, headline."""

from __future__ import annotations

import pytest

from harness.checks import evaluate_all
from harness.report.episodes import breakdown, text_table
from harness.report.html import render_html
from harness.report.model import build_model
from harness.report.summary import to_json, to_markdown

from .loopjb import LoopJB
from .test_episodes import three_steps

PACING = {"premium": {"ttft": 0.05, "tokens_per_second": 1000}, "stable": {"ttft": 0.4, "tokens_per_second": 10}}


@pytest.fixture
def loop() -> LoopJB:
    lj = LoopJB()
    lj.mark("drill_start", 0.0, lanes=["premium", "stable"], time_scale=1.0, pacing=PACING)
    lj.window("premium", 0.0, 1.0, fault="unavailable")
    three_steps(lj)
    return lj


def test_the_breakdown_splits_each_episode_and_estimates_it_on_the_stable_lane(loop):
    b = breakdown(loop.j)
    (row,) = b.rows
    assert row.outcome == "final" and row.steps == 3 and b.stable == "stable"
    assert row.parts == pytest.approx({"route": 0.9, "model_wait": 0.5, "generation": 0.9, "tool_wait": 1.5})
    assert row.estimate == pytest.approx(5.3) and row.saved == pytest.approx(1.5)
    _, line = text_table(b)
    assert line[:3] == ("e0001", "3", "stable premium×2") and line[-2:] == ("3.80", "5.30")
    # only step 1 began inside the fault window (0-1 s): its 0.5 s of route overhead
    assert b.route_in_faults == pytest.approx(0.5)
    assert b.headline() == (
        "the premium lane saved 1.5 s per episode at p50 against stable only (3.8 s against an estimated 5.3 s); "
        "cost 0.5 s of route overhead during the fault windows (unavailable 0-1 s)"
    )


def test_every_report_shows_the_episodes(loop):
    report = evaluate_all(loop.j, ["episodes_complete"])
    m = build_model(loop.j, report)
    html = render_html(loop.j, report)
    assert 'id="episodes"' in html and 'id="episode-e0001"' in html and "saved 1.5 s" in html
    assert "#### Episodes" in to_markdown(m) and "| e0001 | 3 |" in to_markdown(m)
    data = to_json(m)["episodes"]
    assert data["stable_lane"] == "stable" and data["episodes"][0]["stable_only_estimate"] == pytest.approx(5.3)


def test_no_loop_no_episodes_section():
    lj = LoopJB()
    lj.step_ok("premium", 0.0, 0.5, "single")
    assert breakdown(lj.j) is None
    assert 'id="episodes"' not in render_html(lj.j, None)
    assert to_json(build_model(lj.j))["episodes"] is None
