"""The harness watching itself: a timing failure that only the harness's own lag could explain is
UNKNOWN, never FAIL; a larger one still fails. And the lanes' loop really notices when it is held."""

from __future__ import annotations

import time

from harness.checks import Verdict, evaluate_all, make_check
from harness.drill import Drill

from .builder import JB


def _slow_call(jb: JB, total: float) -> None:
    jb.ok("fast", 0.0, total, call="c1", ttft=0.1)
    jb.call("c1", 0.0, total, lane="fast")


def test_a_latency_failure_within_the_harness_lag_is_unknown(jb: JB):
    _slow_call(jb, 2.3)
    jb.mark("harness_lag", 0.5, lag=0.4, worst=0.4, span=0.4)  # the loop lost 0.4 s meanwhile
    report = evaluate_all(jb.j, [make_check("latency_budget", {"total_p95": 2.0})])
    (r,) = report.results
    assert r.verdict is Verdict.UNKNOWN, r.render(jb.j)
    assert "the harness itself ran 0.400s late" in r.evidence[0].what
    assert any("ran late 1 time(s)" in w for w in report.warnings)


def test_a_failure_larger_than_the_lag_still_fails(jb: JB):
    _slow_call(jb, 5.0)
    jb.mark("harness_lag", 0.5, lag=0.4, worst=0.4, span=0.4)
    (r,) = evaluate_all(jb.j, [make_check("latency_budget", {"total_p95": 2.0})]).results
    assert r.verdict is Verdict.FAIL


def test_lag_far_from_the_failure_does_not_excuse_it(jb: JB):
    jb.ok("fast", 10.0, 12.3, call="c1", ttft=0.1)
    jb.call("c1", 10.0, 12.3, lane="fast")
    jb.mark("harness_lag", 1.0, lag=0.4, worst=0.4, span=0.4)
    (r,) = evaluate_all(jb.j, [make_check("latency_budget", {"total_p95": 2.0})]).results
    assert r.verdict is Verdict.FAIL


def test_the_lanes_loop_journals_its_own_lag():
    with Drill("base-two-lanes") as drill:
        assert drill._bg is not None
        drill._bg.loop.call_soon_threadsafe(time.sleep, 0.2)  # hold the loop, as a starved machine would
        deadline = time.monotonic() + 3.0
        while not drill.journal.marks("harness_lag") and time.monotonic() < deadline:
            time.sleep(0.05)
    marks = drill.journal.marks("harness_lag")
    assert marks and max(m.detail["worst"] for m in marks) >= 0.15


def _abandoned_rescue(jb: JB, lag: float) -> None:
    """The agent starts on stable (its breaker has the primary open); that stream freezes while
    the harness stalls, the agent's watchdog gives up on it, probes the primary, which fails, and
    the call ends in error: a failure on the primary "not answered" by the fallback."""
    jb.ok("stable", 0.0, 3.4, call="c1", ttft=0.4)
    jb.err("primary", 3.5, 3.6, call="c1")
    jb.call("c1", 0.0, 3.6, outcome="error", lane=None)
    jb.mark("harness_lag", 0.7, lag=lag, worst=lag, span=lag)


def test_a_behaviour_failure_made_while_the_harness_stalled_is_unknown(jb: JB):
    """No figure to compare (the rescue was "not answered"), but the lanes stalled for most of
    what the agent saw: it may have reacted to the harness's stall, so the verdict is UNKNOWN."""
    _abandoned_rescue(jb, lag=2.0)
    (r,) = evaluate_all(
        jb.j, [make_check("fallback_within", {"primary": "primary", "fallback": "stable", "within": 5})]
    ).results
    assert r.verdict is Verdict.UNKNOWN, r.render(jb.j)
    assert "the harness itself stalled" in r.evidence[0].what


def test_a_behaviour_failure_with_a_short_stall_still_fails(jb: JB):
    _abandoned_rescue(jb, lag=0.1)
    (r,) = evaluate_all(
        jb.j, [make_check("fallback_within", {"primary": "primary", "fallback": "stable", "within": 5})]
    ).results
    assert r.verdict is Verdict.FAIL, r.render(jb.j)
