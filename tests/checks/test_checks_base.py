from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.checks import (
    CHECKS,
    Check,
    CheckResult,
    Evidence,
    Verdict,
    combine,
    evaluate_all,
    make_check,
    make_checks,
    percentile,
    render_failure,
)

from .builder import JB

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def test_registry_has_every_check_of_the_design():
    assert set(CHECKS) == {
        "no_lost_calls",
        "no_truncated_success",
        "retries_bounded",
        "honors_retry_after",
        "no_hammering",
        "backoff",
        "no_retry_on_permanent",
        "fallback_within",
        "latency_budget",
        "recovers_within",
        "circuit_opens",
        "alive_after",
        "reports_fallback_model",
        "fallback_compatible",
        "cost_budget",
        "loop_budget",
        "episodes_complete",
        "no_partial_tool_execution",
    }
    for name, cls in CHECKS.items():
        assert cls.name == name
        assert cls.__doc__ and "Catches" in cls.__doc__


@pytest.mark.parametrize(
    ("verdicts", "want"),
    [
        ([], P),
        ([P, P], P),
        ([P, U], U),
        ([U, P, F], F),
        ([F, U], F),
        ([U, U], U),
    ],
)
def test_combine_fail_beats_unknown_beats_pass(verdicts, want):
    assert combine(verdicts) is want
    assert combine(CheckResult("x", v, "") for v in verdicts) is want
    assert combine(Evidence("e", v) for v in verdicts) is want


def test_make_check_defaults_and_coercion():
    c = make_check("retries_bounded", {})
    assert c.params() == {
        "max_attempts_per_call": 3,
        "max_attempts_per_lane_per_call": None,
        "max_total": None,
        "max_amplification": None,
    }
    h = make_check("honors_retry_after", {"tolerance": 1, "scope": "lane"})
    assert h.tolerance == 1.0 and isinstance(h.tolerance, float)
    assert make_check("retries_bounded", {"max_attempts_per_call": 4.0}).max_attempts_per_call == 4
    assert make_check("retries_bounded", {"max_attempts_per_call": None}).max_attempts_per_call is None


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("no_such_check", {}, "unknown check 'no_such_check'"),
        ("retries_bounded", {"max_attempts": 3}, "unknown parameter.*'max_attempts'"),
        ("retries_bounded", {"max_attempts_per_call": "3"}, "'max_attempts_per_call' must be an integer"),
        ("retries_bounded", {"max_attempts_per_call": True}, "must be an integer"),
        ("retries_bounded", {"max_attempts_per_call": 2.5}, "must be an integer"),
        ("retries_bounded", {"max_attempts_per_call": 0}, "must be > 0"),
        ("honors_retry_after", {"scope": "global"}, "'scope' must be one of 'call', 'lane'"),
        ("honors_retry_after", {"tolerance": float("nan")}, "'tolerance' must be a number"),
        ("backoff", {"jitter": "yes"}, "'jitter' must be a boolean"),
        ("backoff", {"tolerance": 1.5}, "'tolerance' must be in"),
        ("fallback_within", {"primary": "a", "within": 1}, "missing required parameter.*'fallback'"),
        ("fallback_within", {"primary": "a", "fallback": "a", "within": 1}, "different lanes"),
        ("fallback_within", {"primary": "a", "fallback": "b", "within": -1}, "'within' must be > 0"),
        ("recovers_within", {"lane": 3, "within": 1}, "'lane' must be a string"),
        ("latency_budget", {"ttft_p97": 1}, "unknown parameter"),
    ],
)
def test_make_check_errors_name_the_problem(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_check(name, params)


def test_make_checks_accepts_profile_shapes():
    a = make_checks({"no_lost_calls": None, "retries_bounded": {"max_attempts_per_call": 2}})
    b = make_checks(
        [
            "no_lost_calls",
            {"retries_bounded": {"max_attempts_per_call": 2}},
            {"check": "fallback_within", "primary": "a", "fallback": "b", "within": 2},
        ]
    )
    assert [c.name for c in a] == ["no_lost_calls", "retries_bounded"]
    assert [c.name for c in b] == ["no_lost_calls", "retries_bounded", "fallback_within"]
    assert b[1].max_attempts_per_call == 2
    with pytest.raises(ValueError):
        make_checks([{"a": 1, "b": 2}])
    with pytest.raises(ValueError):
        make_checks([3])


def test_percentile_nearest_rank():
    xs = [float(i) for i in range(1, 101)]
    assert percentile(xs, 50) == 50.0
    assert percentile(xs, 95) == 95.0
    assert percentile(xs, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def _flaky_journal() -> JB:
    jb = JB()
    jb.err("ultraspeed", 0.0, 0.01, status=529, fault="overloaded", retry_count=0)
    jb.err("ultraspeed", 0.4, 0.41, status=529, fault="overloaded", retry_count=1)
    jb.err("ultraspeed", 1.2, 1.21, status=529, fault="overloaded", retry_count=2)
    jb.ok("stable", 1.3, 2.0, retry_count=0)
    jb.call("c1", 0.0, 2.0, lane="stable")
    return jb


def test_evaluate_all_and_report_rendering():
    jb = _flaky_journal()
    rep = evaluate_all(jb.j, {"retries_bounded": {"max_attempts_per_call": 3}, "no_lost_calls": {}})
    assert rep.verdict is F and not rep.passed
    assert [r.name for r in rep.failed()] == ["retries_bounded"]
    text = rep.render()
    assert "verdict: FAIL" in text and "retries_bounded" in text
    json.dumps(rep.to_json())  # serialisable


def test_render_failure_shows_timeline_with_lane_status_fault():
    jb = _flaky_journal()
    res = jb.check("retries_bounded", max_attempts_per_call=3)
    assert res.verdict is F
    out = render_failure(res, jb.j)
    assert "retries_bounded(max_attempts_per_call=3): FAIL" in out
    assert "4 attempts for one call" in out
    for needle in ("ultraspeed", "stable", "529", "overloaded", "error_response", "complete", "a000001", "1.210"):
        assert needle in out, needle
    assert "call c1: outcome=ok" in out
    # the timeline is in start order with a header
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if "t_start" in ln and "end_reason" in ln)
    assert "0.000" in lines[head + 1] and "stable" in lines[head + 4]
    # without a journal, attempt ids are still listed
    assert "a000001" in res.render()


def test_evaluate_all_reports_a_crashing_check_as_unknown():
    @dataclass(frozen=True)
    class Boom(Check):
        name = "boom"

        def evaluate(self, journal):
            raise RuntimeError("kaput")

    jb = _flaky_journal()
    rep = evaluate_all(jb.j, [Boom(), make_check("no_lost_calls", {})])
    assert rep.verdict is U
    assert "RuntimeError: kaput" in rep.results[0].summary
    with pytest.raises(RuntimeError):
        evaluate_all(jb.j, [Boom()], raise_errors=True)


def test_evidence_to_json():
    e = Evidence("x", F, "c1", ("a1", "a2"), "fast", 1.0, 2.0, 1.5)
    assert e.to_json() == {
        "what": "x",
        "verdict": "fail",
        "call": "c1",
        "attempts": ["a1", "a2"],
        "lane": "fast",
        "t": 1.0,
        "measured": 2.0,
        "bound": 1.5,
    }


REQUIRED = {
    "fallback_within": {"primary": "a", "fallback": "b", "within": 1.0},
    "recovers_within": {"lane": "a", "within": 1.0},
    "circuit_opens": {"lane": "a"},
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_params_round_trip_and_empty_journal_never_fails(name):
    c = make_check(name, REQUIRED.get(name, {}))
    assert make_check(name, c.params()) == c
    assert c.describe().startswith(name + "(")
    res = c.evaluate(JB().j)
    assert res.verdict is not F, res.summary  # an empty journal shows nothing: never a failure
    assert res.name == name and res.params == c.params()


@given(st.lists(st.sampled_from(list(Verdict))))
def test_combine_is_the_worst_and_order_free(vs):
    got = combine(vs)
    assert got is combine(list(reversed(vs)))
    assert got is (F if F in vs else U if U in vs else P)


def test_checks_work_on_a_journal_loaded_from_jsonl(tmp_path):
    from harness.journal import Attempt, Journal

    path = tmp_path / "j.jsonl"
    j = Journal(path)
    j.record(
        Attempt(
            id="a1",
            lane="fast",
            t_start=0.0,
            wall_start=0.0,
            call_id="c1",
            t_end=0.1,
            end_reason="error_response",
            status=529,
            fault={"name": "overloaded"},
        )
    )
    j.record(
        Attempt(
            id="a2",
            lane="slow",
            t_start=0.2,
            wall_start=0.0,
            call_id="c1",
            t_end=0.9,
            end_reason="complete",
            status=200,
            tokens=5,
            expected_tokens=5,
        )
    )
    j.close()
    back = Journal.load(path)
    rep = evaluate_all(
        back, {"no_lost_calls": {}, "fallback_within": {"primary": "fast", "fallback": "slow", "within": 1}}
    )
    assert rep.passed, rep.render()
