"""loop_budget, episodes_complete and no_partial_tool_execution on hand-made loop journals."""

from __future__ import annotations

import pytest

from harness.checks import Verdict, evaluate_all, make_check

from .loopjb import LoopJB, call, history
from .test_episodes import three_steps

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


@pytest.fixture
def lj() -> LoopJB:
    return LoopJB()


# -- loop_budget -------------------------------------------------------------------------------
def test_loop_budget_judges_steps_and_episodes(lj):
    three_steps(lj)  # step route overheads 0.5, 0.4, 0; episode total 3.8, tool wait 1.5
    ok = lj.check("loop_budget", step_route_max=0.5, episode_total_p50=4.0, step_generation_p95=1.0)
    assert ok.verdict is PASS, ok.summary
    bad = lj.check("loop_budget", step_route_p90=0.3, episode_tool_wait_max=1.0)
    assert bad.verdict is FAIL
    route, tool = bad.evidence
    assert route.verdict is FAIL and "step route p90 = 0.500s" in route.what and "step 1 of episode e0001" in route.what
    assert route.lane == "stable" and set(route.attempts) >= {"a000001", "a000002"}
    assert tool.verdict is FAIL and tool.measured == pytest.approx(1.5) and tool.call == "e0001"


def test_loop_budget_is_unknown_without_samples(lj):
    assert lj.check("loop_budget", step_route_p95=1.0).verdict is UNKNOWN  # no episodes
    three_steps(lj)
    r = lj.check("loop_budget", episode_total_p50=10.0, min_samples=3)
    assert r.verdict is UNKNOWN and "1 samples, need 3" in r.evidence[0].what


def test_loop_budget_refuses_a_bad_parameter():
    with pytest.raises(ValueError, match="step_route_p95"):
        make_check("loop_budget", {"step_route_p95": -1})
    with pytest.raises(ValueError, match="unknown parameter"):
        make_check("loop_budget", {"step_tool_p95": 1})


# -- episodes_complete -------------------------------------------------------------------------
def test_an_episode_that_reaches_its_final_answer_passes(lj):
    three_steps(lj)
    r = lj.check("episodes_complete")
    assert r.verdict is PASS and r.summary.startswith("1/1 episodes reached their final answer")


def test_restarting_the_whole_task_abandons_the_episode(lj):
    lj.step_ok("premium", 0.0, 0.5, "task", tools=[call("s1")])
    lj.cut("premium", 1.0, 1.2, fingerprint="f1", parent_fingerprint="task", call=None)
    lj.step_ok("premium", 1.5, 2.0, "task", tools=[call("s1")])
    lj.step_ok("premium", 2.5, 3.0, "f1", parent="task", hist=history("s1"))
    r = lj.check("episodes_complete")
    assert r.verdict is FAIL
    (bad,) = r.problems()
    assert "episode e0001 abandoned" in bad.what and "as episode e0002" in bad.what
    assert bad.attempts[0] == "a000002" and "fault stream_cut" in bad.what


def test_an_episode_dropped_without_a_word_fails_and_a_reported_error_does_not(lj):
    lj.step_ok("premium", 0.0, 0.5, "task", tools=[call("s1")], call="c1")
    lj.err("premium", 1.0, 1.2, fingerprint="f1", parent_fingerprint="task", call="c1")
    lj.call("c1", 0.0, 1.3, outcome="error", error_type="AllLanesFailed")
    r = lj.check("episodes_complete")
    assert r.verdict is PASS and "reported AllLanesFailed" in r.evidence[0].what
    assert lj.check("episodes_complete", require_final=True).verdict is FAIL

    other = LoopJB()
    other.step_ok("premium", 0.0, 0.5, "task", tools=[call("s1")])
    r = other.check("episodes_complete")
    assert (
        r.verdict is FAIL
        and "abandoned silently" in r.problems()[0].what
        and "asked for tools" in r.summary + r.problems()[0].what
    )


def test_success_reported_for_an_unfinished_episode_is_a_lost_episode(lj):
    lj.step_ok("premium", 0.0, 0.5, "task", tools=[call("s1")], call="c1")
    lj.call("c1", 0.0, 0.6)
    r = lj.check("episodes_complete")
    assert r.verdict is FAIL and "yet call c1 reported success" in r.problems()[0].what


def test_an_episode_in_flight_when_the_drill_stopped_is_unknown(lj):
    lj.mark("drill_start", 0.0)
    lj.step_ok("premium", 0.0, 0.5, "task", tools=[call("s1")])
    lj.step_ok("premium", 0.6, 0.9, "other", tools=[call("o1")])
    # no drill_stop: the drill's process died, or it is judged from inside its with block;
    # only an episode among the last things on the lanes may have been cut off
    r = lj.check("episodes_complete")
    assert [e.verdict for e in r.evidence] == [FAIL, UNKNOWN], r.evidence
    assert "the drill stopped (cut short)" in r.evidence[1].what
    lj.attempt("premium", 1.0, 1.5, fingerprint="f1", parent_fingerprint="other", reason="unknown", call=None)
    lj.mark("drill_stop", 2.0)
    r = lj.check("episodes_complete")
    assert [e.verdict for e in r.evidence] == [FAIL, UNKNOWN]
    assert "open when the lanes stopped" in r.evidence[1].what


# -- no_partial_tool_execution ------------------------------------------------------------------
def _cut_step(lj: LoopJB, **kw) -> None:
    lj.step_ok("premium", 0.0, 0.5, "task", tools=[call("s1")])
    lj.cut(
        "premium",
        1.0,
        1.2,
        fingerprint="f1",
        parent_fingerprint="task",
        call=None,
        tool_history=history("s1"),
        tool_calls=[call("half", complete=False)],
        **kw,
    )


def test_executing_a_cut_tool_call_fails_naming_both_attempts(lj):
    _cut_step(lj)
    lj.step_ok("premium", 1.5, 2.0, "f2", parent="f1", hist=history("s1", "half"))
    r = lj.check("no_partial_tool_execution")
    assert r.verdict is FAIL
    (bad,) = r.problems()
    assert bad.attempts == ("a000002", "a000003") and "arguments were cut (cut, fault stream_cut)" in bad.what


def test_asking_again_after_a_cut_tool_call_passes(lj):
    _cut_step(lj)
    lj.step_ok("stable", 1.3, 2.0, "f1", parent="task", hist=history("s1"), tools=[call("whole")])
    lj.step_ok("stable", 2.5, 3.0, "f2", parent="f1", hist=history("s1", "whole"))
    r = lj.check("no_partial_tool_execution")
    assert r.verdict is PASS and "1 cut or malformed tool call(s) seen, 0 executed" == r.summary


def test_malformed_and_token_limited_calls_must_not_run(lj):
    lj.step_ok("premium", 0.0, 0.5, "task", tools=[call("bad", valid=False)])
    lj.step_ok("premium", 1.0, 1.5, "f1", parent="task", hist=history("bad", valid=False))
    r = lj.check("no_partial_tool_execution")
    assert r.verdict is FAIL and "malformed" in r.problems()[0].what

    other = LoopJB()
    other.step_ok("premium", 0.0, 0.5, "task", tools=[call("long", complete=False)], finish="length")
    other.step_ok("premium", 1.0, 1.5, "f1", parent="task", hist=history("long"))
    r = other.check("no_partial_tool_execution")
    assert r.verdict is FAIL and "token limit (finish length)" in r.problems()[0].what


def test_a_repaired_stand_in_for_a_cut_call_is_caught(lj):
    _cut_step(lj)
    lj.step_ok("premium", 1.5, 2.0, "f2", parent="f1", hist=history("s1", "empty-object"))
    r = lj.check("no_partial_tool_execution")
    assert r.verdict is FAIL and "repaired and executed" in r.problems()[0].what


def test_no_bad_call_or_no_later_request_is_unknown(lj):
    three_steps(lj)
    assert lj.check("no_partial_tool_execution").verdict is UNKNOWN
    other = LoopJB()
    _cut_step(other)
    r = other.check("no_partial_tool_execution")
    assert r.verdict is UNKNOWN and "no later request" in r.evidence[0].what


def test_loop_checks_take_severity_and_requires(lj):
    _cut_step(lj)
    lj.step_ok("premium", 1.5, 2.0, "f2", parent="f1", hist=history("s1", "half"))
    report = evaluate_all(lj.j, [make_check("no_partial_tool_execution", {"severity": "warn"})])
    assert report.passed and report.results[0].label == "WARN"
