from __future__ import annotations

import pytest

from harness.checks import Verdict, call_metrics, call_views, render_failure

from .builder import JB

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def test_call_metrics_split_route_model_wait_generation_and_post(jb: JB):
    jb.err("fast", 0.0, 0.2, status=529)
    jb.ok("slow", 0.3, 1.3, ttft=0.5)  # first token 0.8, last token 1.3
    jb.call("c1", 0.0, 4.0, lane="slow")  # the agent then worked on the answer until 4.0
    (v,) = call_views(jb.j)
    m = call_metrics(v)
    assert m["ttft"] == pytest.approx(0.8)
    assert m["route"] == pytest.approx(0.3)  # the failed attempt and the fallback
    assert m["model_wait"] == pytest.approx(0.5)
    assert m["generation"] == pytest.approx(0.5)
    assert m["post"] == pytest.approx(2.7)
    assert m["total"] == pytest.approx(4.0)
    assert "tool" not in m  # call time minus generation is not tool time


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
    assert "ttft p50=0.200s" in res.summary and "route" in res.summary


def test_latency_budget_fail_names_the_slow_calls(jb: JB):
    _calls(jb, [0.1] * 18 + [3.0, 4.0])
    res = jb.check("latency_budget", ttft_p50=0.5, ttft_p95=1.0)
    assert res.verdict is F
    (e,) = res.problems()
    assert e.measured == pytest.approx(3.0) and e.bound == 1.0  # nearest rank: 19th of 20
    assert "2 of 20 calls over" in e.what and e.call == "c19"
    out = render_failure(res, jb.j)
    assert "fast" in out and "ttft p95" in out


def test_latency_budget_post_answer_time_only_when_asked(jb: JB):
    jb.ok("fast", 0.0, 1.0, call="c1")
    jb.call("c1", 0.0, 30.0, lane="fast")
    assert jb.check("latency_budget", generation_p95=1.0).verdict is P
    assert jb.check("latency_budget", post_p95=5.0).verdict is F
    assert jb.check("latency_budget", route_p95=0.5, model_wait_p95=0.5).verdict is P


def test_latency_budget_unknown_with_too_few_samples(jb: JB):
    assert jb.check("latency_budget", ttft_p95=1.0).verdict is U
    assert jb.check("latency_budget").verdict is U
    _calls(jb, [0.1, 0.2])
    assert jb.check("latency_budget", ttft_p95=1.0, min_samples=5).verdict is U
    assert jb.check("latency_budget", ttft_p95=1.0, min_samples=2).verdict is P


def test_latency_budget_counts_the_wait_of_failed_calls(jb: JB):
    """A call that hung 60 s and then errored cost its user 60 s (it was left out before)."""
    jb.timeout("fast", 0.0, 60.0, call="c1")
    jb.call("c1", 0.0, 60.0, "error", error_type="APITimeoutError")
    jb.ok("fast", 61.0, 62.0, call="c2")
    jb.call("c2", 61.0, 62.0, lane="fast")
    res = jb.check("latency_budget", total_p99=2.0)
    assert res.verdict is F
    (e,) = res.problems()
    assert e.call == "c1" and "failed" in e.what and e.measured == pytest.approx(60.0)
    assert jb.check("latency_budget", ttft_p99=2.0).verdict is P  # no first token: not a ttft sample
