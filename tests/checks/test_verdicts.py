"""What a verdict tells its reader beyond the checks: severity, applicability, a drill that proved
nothing, a workload that ended early, SDK retries in a compressed drill, and the calls counted once."""

from __future__ import annotations

import pytest

from harness.checks import Verdict, evaluate_all, make_check
from harness.drill import answer_text
from harness.profile import ProfileError, load_profile_text

from .builder import JB, text

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def _start(jb: JB, **detail: object) -> None:
    jb.mark("drill_start", 0.0, profile="p", time_scale=1.0, **detail)


def test_a_warn_check_is_reported_but_never_fails_the_drill(jb: JB):
    jb.err("fast", 0.0, 0.1, call="c1", status=529)
    jb.call("c1", 0.0, 0.1, "error", error_type="OverloadedError")
    report = evaluate_all(
        jb.j,
        [
            make_check("fallback_within", {"primary": "fast", "fallback": "slow", "within": 1, "severity": "warn"}),
            make_check("no_lost_calls"),
        ],
    )
    (fw,) = [r for r in report.results if r.name == "fallback_within"]
    assert fw.verdict is F and fw.label == "WARN" and not fw.decides
    assert report.verdict is P and not report.failed() and report.warned() == [fw]
    assert "WARN    fallback_within" in report.summary()


def test_an_agent_without_a_fallback_is_judged_safe_instead():
    """requires: [fallback] on an agent that never used a second lane: judged safe (every call
    ended cleanly, none truncated) rather than failed for not falling back."""
    safe, lossy = JB(), JB()
    for jb in (safe, lossy):
        jb.err("fast", 0.0, 0.1, call="c1", status=529)
        jb.call("c1", 0.0, 0.1, "error", error_type="OverloadedError")
    lossy.err("fast", 1.0, 1.1, call="c2", status=529)
    lossy.call("c2", 1.0, 1.1, "error")  # an unclassified error: lost
    spec = {"primary": "fast", "fallback": "slow", "within": 1, "requires": ["fallback"]}
    (r,) = evaluate_all(safe.j, [make_check("fallback_within", spec)]).results
    assert r.verdict is P and "not applicable" in r.summary and "judged safe" in r.summary
    (r,) = evaluate_all(lossy.j, [make_check("fallback_within", spec)]).results
    assert r.verdict is F
    # declared: the agent has a fallback, so the check applies (and fails)
    (r,) = evaluate_all(safe.j, [make_check("fallback_within", spec)], capabilities={"fallback": True}).results
    assert r.verdict is F and "never tried" in r.problems()[0].what


def test_severity_and_requires_are_validated_in_profiles():
    good = "lanes: {a: {dialect: openai}}\nchecks:\n  - alive_after: {severity: warn, requires: [fallback]}\n"
    (chk,) = load_profile_text(good).checks
    assert chk.params == {"severity": "warn", "requires": ["fallback"]}
    with pytest.raises(ProfileError, match=r"severity"):
        load_profile_text("lanes: {a: {dialect: openai}}\nchecks:\n  - alive_after: {severity: fatal}\n")
    with pytest.raises(ProfileError, match=r"unknown capabilities 'wings'"):
        load_profile_text("lanes: {a: {dialect: openai}}\nchecks:\n  - alive_after: {requires: [wings]}\n")


def test_a_workload_that_made_no_call_fails_the_drill(jb: JB):
    _start(jb)
    report = evaluate_all(jb.j, [make_check("no_lost_calls")])
    assert report.verdict is F
    assert report.results[0].name == "workload" and "proved nothing" in report.results[0].summary


def test_a_workload_that_ended_before_the_last_window_closed_is_a_warning(jb: JB):
    _start(jb, last_window_close=40.0)
    jb.ok("fast", 0.0, 1.0, call="c1")
    jb.call("c1", 0.0, 1.0, lane="fast")
    report = evaluate_all(
        jb.j, [make_check("no_lost_calls"), make_check("recovers_within", {"lane": "fast", "within": 5})]
    )
    assert report.warnings and "before the profile's last fault window closed (t=40s)" in report.warnings[0]
    assert "recovers_within could not judge" in report.warnings[0]
    (rw,) = [r for r in report.results if r.name == "recovers_within"]
    assert rw.notes == report.warnings


def test_sdk_retries_in_a_compressed_drill_name_the_verdicts_they_may_distort(jb: JB):
    jb.mark("drill_start", 0.0, profile="p", time_scale=0.1)
    jb.err("fast", 0.0, 0.1, call="c1", status=529, retry_count=0)
    jb.ok("fast", 0.6, 1.0, call="c1", retry_count=1)
    jb.call("c1", 0.0, 1.0, lane="fast")
    report = evaluate_all(jb.j, [make_check("no_lost_calls"), make_check("backoff")])
    (w,) = report.warnings
    assert "1 SDK retries" in w and "10x longer" in w and "backoff" in w and "no_lost_calls" not in w.split(":")[-1]


def test_summaries_count_calls_not_views(jb: JB):
    """Eight calls whose attempts carry no call id: 8/8 calls, not 16/16 (call records and attempt
    groups were counted apart before)."""
    for i in range(8):
        jb.ok("fast", i, i + 0.5, call=None, fingerprint=f"fp-c{i}")
        jb.call(f"c{i}", i - 0.01, i + 0.51, lane="fast", text=text(f"c{i}"))
    res = jb.check("no_lost_calls")
    assert res.summary == "8/8 calls ended cleanly"
    assert jb.check("no_truncated_success").verdict is P


def test_an_empty_or_someone_elses_answer_is_not_a_success(jb: JB):
    jb.ok("fast", 0.0, 0.5, call=None, fingerprint="fp-c1")
    jb.call("c1", 0.0, 0.6, lane="fast", text=text("c1"))
    jb.ok("fast", 1.0, 1.5, call=None, fingerprint="fp-c2")
    jb.call("c2", 1.0, 1.6, lane="fast", text=text("c1"))  # the previous call's answer, again
    jb.ok("fast", 2.0, 2.5, call=None, fingerprint="fp-c3")
    jb.call("c3", 2.0, 2.6, lane="fast", text="")
    res = jb.check("no_truncated_success")
    assert res.verdict is F
    bad = {e.call: e.what for e in res.problems()}
    assert "another conversation (call c1's)" in bad["c2"] and "empty answer" in bad["c3"] and "c1" not in bad


def test_alive_after_judges_the_last_call_when_no_window_closes(jb: JB):
    """Faults that are always on (or on a share of attempts) close no window: the drill's last call
    tells whether the agent is still alive (this was UNKNOWN on 32 of 38 shipped profiles)."""
    jb.ok("fast", 0.0, 0.5, call="c1")
    jb.call("c1", 0.0, 0.5, lane="fast")
    res = jb.check("alive_after")
    assert res.verdict is P and "no fault window closed" in res.summary


@pytest.mark.parametrize(
    ("result", "want"),
    [
        ("plain", "plain"),
        ({"text": "dict"}, "dict"),
        (
            type(
                "ChatCompletion", (), {"choices": [type("C", (), {"message": type("M", (), {"content": "oa"})()})()]}
            )(),
            "oa",
        ),
        (type("Message", (), {"content": [type("B", (), {"type": "text", "text": "an"})()]})(), "an"),
        (type("Response", (), {"output_text": "resp"})(), "resp"),
        (42, None),
    ],
)
def test_the_answer_text_is_read_from_what_agents_return(result, want):
    assert answer_text(result) == want


def test_a_call_in_flight_when_the_drill_stopped_is_unknown_not_lost(jb: JB):
    """An interrupted drill journals its open attempts with outcome unknown: without a call record,
    such a call is not shown lost (a correct agent interrupted mid-call must not fail)."""
    jb.ok("fast", 0.0, 0.5, call=None, fingerprint="fp-a")
    jb.attempt("fast", 1.0, 2.0, call=None, fingerprint="fp-b", reason="unknown", status=200)
    res = jb.check("no_lost_calls")
    assert res.verdict is U and "in flight when the drill stopped" in res.problems()[0].what


def test_a_call_whose_answer_was_tool_calls_is_not_an_empty_answer(jb: JB):
    """An agent that reports the step that asked for tools (no text) accepted no empty answer."""
    calls = [{"id": "t1", "name": "run", "arguments_complete": True, "arguments_valid": True, "args_sha": "x"}]
    jb.ok("fast", 0.0, 0.5, call=None, fingerprint="fp-c1", tool_calls=calls)
    jb.call("c1", 0.0, 0.6, lane="fast", text="")
    assert jb.check("no_truncated_success").verdict is P
