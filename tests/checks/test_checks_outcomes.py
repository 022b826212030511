from __future__ import annotations

from harness.checks import Verdict, call_views, render_failure

from .builder import JB, text

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


# -- no_lost_calls ---------------------------------------------------------------------------


def test_no_lost_calls_pass_with_answers_and_clean_errors(jb: JB):
    jb.ok("fast", 0.0, 1.0, call="c1")
    jb.call("c1", 0.0, 1.0, lane="fast")
    jb.err("fast", 0.0, 0.1, call="c2", status=400, fault="context_length")
    jb.call("c2", 0.0, 0.1, "error", error_type="BadRequestError", error="too long")
    res = jb.check("no_lost_calls", budget=2)
    assert res.verdict is P, res.summary
    assert "2/2 calls ended cleanly" in res.summary


def test_no_lost_calls_without_call_records_uses_attempts(jb: JB):
    jb.err("fast", 0.0, 0.1, call="c1")
    jb.ok("slow", 0.2, 1.0, call="c1")
    assert jb.check("no_lost_calls").verdict is P


def test_no_lost_calls_fails_on_a_group_with_no_success_and_no_record(jb: JB):
    jb.ok("fast", 0.0, 1.0, call="c1")
    jb.err("fast", 0.0, 0.1, call="c2", fault="overloaded", status=529)
    jb.cut("fast", 0.2, 0.5, call="c2")
    res = jb.check("no_lost_calls")
    assert res.verdict is F
    bad = res.problems()[0]
    assert bad.call == "c2" and len(bad.attempts) == 2
    assert "overloaded" in render_failure(res, jb.j)


def test_no_lost_calls_fails_on_unclassified_error_incomplete_answer_and_budget(jb: JB):
    jb.call("c1", 0.0, 1.0, "error", error="???")
    jb.call("c2", 0.0, 1.0, "ok", complete=False)
    jb.call("c3", 0.0, 9.0, "ok")
    res = jb.check("no_lost_calls", budget=5.0)
    assert res.verdict is F
    whats = {e.call: e for e in res.problems()}
    assert "unclassified" in whats["c1"].what
    assert "incomplete" in whats["c2"].what
    assert whats["c3"].measured == 9.0 and whats["c3"].bound == 5.0


def test_no_lost_calls_unknown_outcome_is_unknown_unless_something_failed(jb: JB):
    jb.timeout("fast", 0.0, 5.0, call="c1")
    jb.call("c1", 0.0, 5.0, "unknown")
    jb.call("c2", 0.0, 1.0, "ok")
    assert jb.check("no_lost_calls").verdict is U
    jb.call("c3", 0.0, 1.0, "error")  # unclassified
    assert jb.check("no_lost_calls").verdict is F


def test_no_lost_calls_unknown_on_empty_journal(jb: JB):
    assert jb.check("no_lost_calls").verdict is U


def test_no_lost_calls_budget_without_end_is_unknown(jb: JB):
    jb.call("c1", 0.0, None, "ok")
    assert jb.check("no_lost_calls", budget=1).verdict is U


# -- no_truncated_success --------------------------------------------------------------------


def test_no_truncated_success_pass_when_text_is_the_canonical_answer(jb: JB):
    jb.cut("fast", 0.0, 0.5, call="c1", tokens=3, expected=10)
    jb.ok("slow", 0.6, 1.5, call="c1", tokens=10)
    jb.call("c1", 0.0, 1.5, lane="slow", text=text("c1", 10), complete=None)
    res = jb.check("no_truncated_success")
    assert res.verdict is P, res.summary


def test_no_truncated_success_fails_on_a_prefix(jb: JB):
    jb.cut("fast", 0.0, 0.5, call="c1", tokens=4, expected=10)
    jb.call("c1", 0.0, 0.5, lane="fast", text=text("c1", 4), complete=None)
    res = jb.check("no_truncated_success")
    assert res.verdict is F
    e = res.problems()[0]
    assert e.measured == 4 and e.bound == 10 and "prefix" in e.what
    out = render_failure(res, jb.j)
    assert "fast" in out and "cut" in out and "stream_cut" in out


def test_no_truncated_success_fails_on_complete_false(jb: JB):
    jb.ok("fast", 0.0, 0.5, call="c1")
    jb.call("c1", 0.0, 0.5, lane="fast", complete=False)
    assert jb.check("no_truncated_success").verdict is F


def test_no_truncated_success_fails_on_cut_attempt_reported_ok_without_later_complete(jb: JB):
    jb.ok("slow", 0.0, 0.2, call="c1")  # an earlier complete attempt does not count
    jb.cut("fast", 0.3, 0.6, call="c1")
    jb.call("c1", 0.0, 0.6, lane="fast", complete=None)
    res = jb.check("no_truncated_success")
    assert res.verdict is F
    assert "was cut after 3 tokens" in res.problems()[0].what


def test_no_truncated_success_unknown_without_call_records_or_text(jb: JB):
    jb.ok("fast", 0.0, 0.5, call="c1")
    assert jb.check("no_truncated_success").verdict is U
    jb.call("c1", 0.0, 0.5, lane="fast", complete=None)
    res = jb.check("no_truncated_success")
    assert res.verdict is U and "not judgeable" in res.summary


def test_no_truncated_success_unknown_when_nothing_succeeded(jb: JB):
    jb.err("fast", 0.0, 0.5, call="c1")
    jb.call("c1", 0.0, 0.5, "error", error_type="APIError")
    assert jb.check("no_truncated_success").verdict is U


def test_call_records_join_attempts_by_fingerprint_when_no_call_id(jb: JB):
    # two calls with the same conversation, no call-id header: attempts split by time
    jb.ok("fast", 0.0, 0.5, call=None, fingerprint="fp-same", tokens=10)
    jb.cut("fast", 2.0, 2.5, call=None, fingerprint="fp-same", tokens=2, expected=10)
    jb.call("x1", 0.0, 0.6, fingerprint="fp-same", lane="fast", text=None, complete=None)
    jb.call("x2", 1.9, 2.6, fingerprint="fp-same", lane="fast", text=None, complete=None)
    views = {v.key: v for v in call_views(jb.j)}
    assert [a.t_start for a in views["x1"].attempts] == [0.0]
    assert [a.t_start for a in views["x2"].attempts] == [2.0]
    res = jb.check("no_truncated_success")
    assert res.verdict is F and res.problems()[0].call == "x2"


# -- reports_fallback_model ------------------------------------------------------------------


def test_reports_fallback_model_pass(jb: JB):
    jb.err("fast", 0.0, 0.1, call="c1")
    jb.ok("slow", 0.2, 1.0, call="c1")
    jb.call("c1", 0.0, 1.0, lane="slow")
    assert jb.check("reports_fallback_model").verdict is P


def test_reports_fallback_model_fails_on_wrong_or_missing_lane_or_usage(jb: JB):
    jb.err("fast", 0.0, 0.1, call="c1")
    jb.ok("slow", 0.2, 1.0, call="c1")
    jb.call("c1", 0.0, 1.0, lane="fast")  # claims the premium lane
    jb.ok("slow", 0.0, 1.0, call="c2")
    jb.call("c2", 0.0, 1.0, lane=None)
    jb.ok("slow", 0.0, 1.0, call="c3", usage=None)
    jb.call("c3", 0.0, 1.0, lane="slow")
    res = jb.check("reports_fallback_model")
    assert res.verdict is F
    assert {e.call for e in res.problems()} == {"c1", "c2", "c3"}


def test_reports_fallback_model_unknown(jb: JB):
    assert jb.check("reports_fallback_model").verdict is U
    jb.call("c1", 0.0, 1.0, lane="slow")  # ok, but no attempt to attribute
    assert jb.check("reports_fallback_model").verdict is U


# -- alive_after -----------------------------------------------------------------------------


def test_alive_after_pass_fail_unknown():
    jb = JB()
    jb.err("fast", 1.0, 1.1, call="c1")
    jb.call("c1", 1.0, 1.1, "error", error_type="APIError")
    jb.window("fast", 0.5, 2.0)
    assert jb.check("alive_after").verdict is U  # nothing after the window
    jb.ok("fast", 3.0, 3.5, call="c2")
    jb.call("c2", 3.0, 3.5, lane="fast")
    assert jb.check("alive_after").verdict is P
    jb.err("fast", 4.0, 4.1, call="c3")
    jb.call("c3", 4.0, 4.1, "error", error_type="APIError")
    res = jb.check("alive_after")
    assert res.verdict is F and res.problems()[0].call == "c3"
    assert jb.check("alive_after", after=10.0).verdict is U


def test_alive_after_without_window_or_with_unknown_outcome(jb: JB):
    jb.timeout("fast", 0.0, 5.0, call="c1")
    assert jb.check("alive_after").verdict is U  # no window closed
    assert jb.check("alive_after", after=0.0).verdict is U  # the last call's outcome is unknown
    jb.ok("fast", 6.0, 7.0, call="c2")
    assert jb.check("alive_after", after=0.0).verdict is P
