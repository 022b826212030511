from __future__ import annotations

import pytest

from harness.checks import Verdict, call_metrics, call_views, render_failure

from .builder import JB

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def test_call_metrics_separate_generation_from_tool_time(jb: JB):
    jb.err("fast", 0.0, 0.2, status=529)
    jb.ok("slow", 0.3, 1.3, ttft=0.5)  # first token 0.8, last token 1.3
    jb.call("c1", 0.0, 4.0, lane="slow")  # the agent then ran a tool until 4.0
    (v,) = call_views(jb.j)
    m = call_metrics(v)
    assert m["ttft"] == pytest.approx(0.8)
    assert m["generation"] == pytest.approx(0.5)
    assert m["total"] == pytest.approx(4.0)
    assert m["tool"] == pytest.approx(3.5)


def test_call_metrics_prefer_the_call_first_token(jb: JB):
    jb.ok("slow", 0.3, 1.3, ttft=0.5)
    jb.call("c1", 0.1, 1.4, lane="slow", t_first_token=0.7)
    (v,) = call_views(jb.j)
    assert call_metrics(v)["ttft"] == pytest.approx(0.6)


def _calls(jb: JB, ttfts: list[float]) -> None:
    for i, ttft in enumerate(ttfts):
        t = 10.0 * i
        jb.ok("fast", t, t + ttft + 1.0, call=f"c{i}", ttft=ttft)


def test_latency_budget_pass(jb: JB):
    _calls(jb, [0.1, 0.2, 0.3, 0.4])
    res = jb.check("latency_budget", ttft_p50=0.25, ttft_p95=0.5, generation_p95=1.0, total_p95=2.0)
    assert res.verdict is P, res.summary
    assert "ttft p50=0.200s" in res.summary and "tool" in res.summary


def test_latency_budget_fail_names_the_slow_calls(jb: JB):
    _calls(jb, [0.1] * 18 + [3.0, 4.0])
    res = jb.check("latency_budget", ttft_p50=0.5, ttft_p95=1.0)
    assert res.verdict is F
    (e,) = res.problems()
    assert e.measured == pytest.approx(3.0) and e.bound == 1.0  # nearest rank: 19th of 20
    assert "2 of 20 calls over" in e.what and e.call == "c19"
    out = render_failure(res, jb.j)
    assert "fast" in out and "ttft p95" in out


def test_latency_budget_tool_time_only_when_asked(jb: JB):
    jb.ok("fast", 0.0, 1.0, call="c1")
    jb.call("c1", 0.0, 30.0, lane="fast")
    assert jb.check("latency_budget", generation_p95=1.0).verdict is P
    assert jb.check("latency_budget", tool_p95=5.0).verdict is F


def test_latency_budget_unknown_with_too_few_samples(jb: JB):
    assert jb.check("latency_budget", ttft_p95=1.0).verdict is U
    assert jb.check("latency_budget").verdict is U
    _calls(jb, [0.1, 0.2])
    assert jb.check("latency_budget", ttft_p95=1.0, min_samples=5).verdict is U
    assert jb.check("latency_budget", ttft_p95=1.0, min_samples=2).verdict is P


def test_latency_budget_ignores_failed_calls(jb: JB):
    jb.timeout("fast", 0.0, 600.0, call="c1")
    jb.ok("fast", 0.0, 1.0, call="c2")
    assert jb.check("latency_budget", total_p99=2.0).verdict is P
