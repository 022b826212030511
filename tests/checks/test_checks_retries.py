from __future__ import annotations

import random

import pytest

from harness.checks import Verdict, render_failure, sdk_runs

from .builder import JB

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


# -- retries_bounded -------------------------------------------------------------------------


def test_retries_bounded_pass(jb: JB):
    jb.err("fast", 0.0, 0.1, status=429, retry_count=0)
    jb.err("fast", 0.6, 0.7, status=429, retry_count=1)
    jb.ok("slow", 0.8, 1.5)
    res = jb.check("retries_bounded", max_attempts_per_call=3, max_amplification=1)
    assert res.verdict is P, res.summary
    assert "retry layers seen: 1" in res.summary


def test_retries_bounded_fail_per_call_per_lane_and_total(jb: JB):
    for i in range(4):
        jb.err("fast", i * 1.0, i * 1.0 + 0.1, call="c1")
    jb.ok("fast", 0.0, 0.5, call="c2")
    res = jb.check("retries_bounded", max_attempts_per_call=3, max_attempts_per_lane_per_call=2, max_total=4)
    assert res.verdict is F
    measured = sorted((e.what.split(" ")[0], e.measured, e.bound) for e in res.problems())
    assert measured == [("4", 4, 2), ("4", 4, 3), ("5", 5, 4)]


def test_retries_bounded_detects_app_retrying_an_sdk_that_retries(jb: JB):
    # app loop x3 around an SDK that tries 3 times: retry count resets to 0 twice
    t = 0.0
    for _app in range(3):
        for rc in range(3):
            jb.err("fast", t, t + 0.01, status=529, fault="overloaded", retry_count=rc)
            t += 0.5
    assert [len(r) for r in sdk_runs(jb.j.attempts())] == [3, 3, 3]
    res = jb.check("retries_bounded", max_attempts_per_call=None, max_amplification=1)
    assert res.verdict is F
    e = res.problems()[0]
    assert e.measured == 3 and "2 retry layers" in e.what
    assert "retry layers seen: 2" in res.summary
    # without a bound the layers are reported, not judged
    res2 = jb.check("retries_bounded", max_attempts_per_call=None)
    assert res2.verdict is P and "retry layers seen: 2" in res2.summary


def test_retries_bounded_unknown_without_attempts(jb: JB):
    jb.call("c1", 0.0, 1.0)
    assert jb.check("retries_bounded").verdict is U


# -- honors_retry_after ----------------------------------------------------------------------


def test_honors_retry_after_pass_reports_actual_vs_requested(jb: JB):
    jb.err("fast", 0.0, 0.1, status=429, fault="rate_limit", retry_after=2.0)
    jb.ok("fast", 2.0, 2.5)  # gap 1.9 >= 0.9 * 2
    res = jb.check("honors_retry_after")
    assert res.verdict is P
    (e,) = res.evidence
    assert abs(e.measured - 1.9) < 1e-9 and abs(e.bound - 1.8) < 1e-9


def test_honors_retry_after_fail_on_early_retry(jb: JB):
    jb.err("fast", 0.0, 0.1, status=429, fault="rate_limit", retry_after=90.0, retry_count=0)
    jb.ok("fast", 1.0, 1.5, retry_count=1)  # anthropic-style 0.5-8 s backoff instead of 90 s
    res = jb.check("honors_retry_after")
    assert res.verdict is F
    out = render_failure(res, jb.j)
    assert "asked 90s" in out and "rate_limit" in out and "429" in out and "fast" in out


def test_honors_retry_after_scope_call_vs_lane(jb: JB):
    jb.err("fast", 0.0, 0.1, call="c1", status=429, retry_after=2.0)
    jb.ok("fast", 0.5, 1.0, call="c2")  # another call hits the throttled lane early
    jb.ok("slow", 0.2, 1.0, call="c1")  # c1 fell back: fine
    assert jb.check("honors_retry_after", scope="call").verdict is U  # c1 never came back to fast
    assert jb.check("honors_retry_after", scope="lane").verdict is F


def test_honors_retry_after_ignores_attempts_already_in_flight(jb: JB):
    jb.ok("fast", 0.05, 1.0, call="c2")  # started before the 429 was answered
    jb.err("fast", 0.0, 0.1, call="c1", status=429, retry_after=2.0)
    jb.ok("fast", 2.2, 3.0, call="c3")
    assert jb.check("honors_retry_after", scope="lane").verdict is P


def test_honors_retry_after_lane_scope_skips_requests_sent_before_the_answer_arrived(jb: JB):
    """Another call's request that reached the lane 1 ms after the 429 went out was sent before
    the 429 could be read (this failed before); the same call's own quick retry still fails."""
    jb.err("fast", 0.0, 1.0, call="c1", status=429, retry_after=2.0)
    jb.ok("fast", 1.001, 1.5, call="c2")
    jb.ok("fast", 3.2, 3.5, call="c3")
    res = jb.check("honors_retry_after", scope="lane")
    assert res.verdict is P, res.render(jb.j)
    assert any("a000003" in e.attempts for e in res.evidence)
    jb.err("fast", 4.0, 4.1, call="c4", status=429, retry_after=2.0)
    jb.ok("fast", 4.101, 4.5, call="c4")  # its own retry, 1 ms later: ignored the delay
    assert jb.check("honors_retry_after", scope="lane").verdict is F


def test_honors_retry_after_unknown_without_retry_after(jb: JB):
    jb.err("fast", 0.0, 0.1, status=503)
    jb.ok("fast", 0.5, 1.0)
    assert jb.check("honors_retry_after").verdict is U


# -- no_hammering ----------------------------------------------------------------------------


def test_no_hammering_fails_a_call_that_retries_in_a_tight_loop(jb: JB):
    for i in range(8):
        jb.err("fast", 0.1 * i, 0.1 * i + 0.01, call="c1", status=529, fault="overloaded")
    res = jb.check("no_hammering", max_attempts=5, window=1.0)
    assert res.verdict is F
    e = res.problems()[0]
    assert e.measured == 8 and e.bound == 5 and e.call == "c1" and e.lane == "fast"


def test_no_hammering_judges_against_the_offered_load(jb: JB):
    """Six calls at once, each retrying with backoff: 18 failing attempts in a second is load,
    not a storm (this failed before: it counted attempts per lane, whatever their calls)."""
    rng = random.Random(3)
    for c in range(6):
        t = 0.0
        for n in range(3):
            jb.err("fast", t, t + 0.01, call=f"c{c}", status=529)
            t += 0.01 + rng.uniform(0, 0.1 * 2**n)
    res = jb.check("no_hammering", max_attempts=5, window=1.0)
    assert res.verdict is P, res.render(jb.j)
    assert "from 6 calls" in res.summary
    assert jb.check("no_hammering", max_attempts=5, window=1.0, max_amplification=2.0).verdict is F


def test_no_hammering_pass_when_spread_out_or_succeeding(jb: JB):
    for i in range(8):
        jb.err("fast", 0.5 * i, 0.5 * i + 0.01, call="c1")
    for i in range(20):
        jb.ok("slow", 0.05 * i, 0.05 * i + 0.01, call="s1")  # healthy traffic is not hammering
    res = jb.check("no_hammering", max_attempts=3, window=1.0)
    assert res.verdict is P, res.summary
    assert jb.check("no_hammering", max_attempts=3, window=1.0, only_failing=False).verdict is F


def test_no_hammering_unknown_when_nothing_failed(jb: JB):
    jb.ok("fast", 0.0, 0.5)
    assert jb.check("no_hammering").verdict is U


# -- backoff ---------------------------------------------------------------------------------


def _ladder(jb: JB, call: str, waits: list[float], t0: float = 0.0, lane: str = "fast") -> None:
    t = t0
    for w in waits:
        jb.err(lane, t, t + 0.01, call=call, status=503)
        t = t + 0.01 + w
    jb.ok(lane, t, t + 0.2, call=call)


def test_backoff_a_jittered_wait_may_shrink(jb: JB):
    """Full jitter (uniform(0, cap)) draws a second wait shorter than the first about one call in
    three: that is not a backoff that fails to grow (this failed before)."""
    _ladder(jb, "c1", [0.242, 0.112])
    assert jb.check("backoff").verdict is not F


def test_backoff_pass_with_growing_jittered_waits(jb: JB):
    rng = random.Random(1)
    for c in range(6):
        _ladder(jb, f"c{c}", [rng.uniform(0, 0.25 * 2**n) for n in range(1, 4)], t0=0.001 * c)
    res = jb.check("backoff")
    assert res.verdict is P, res.render(jb.j)
    assert any("longest first retry wait" in e.what for e in res.evidence)


def test_backoff_fail_when_the_envelope_shrinks(jb: JB):
    for c in range(5):
        _ladder(jb, f"c{c}", [1.0 + 0.1 * c, 0.1 + 0.05 * c], t0=0.5 * c)
    res = jb.check("backoff", jitter=False)
    assert res.verdict is F
    (e,) = res.problems()
    assert "envelope shrank" in e.what and e.measured == pytest.approx(0.3)


def test_backoff_fail_on_a_fixed_interval(jb: JB):
    _ladder(jb, "c1", [0.1, 0.1, 0.1, 0.1])
    res = jb.check("backoff")
    assert res.verdict is F and "fixed interval" in res.problems()[0].what
    jb2 = JB()
    _ladder(jb2, "c1", [0.0, 0.0, 0.0])  # zero-delay loops of two calls
    _ladder(jb2, "c2", [0.0, 0.0, 0.0], t0=5.0)
    assert jb2.check("backoff").verdict is F


def test_backoff_fail_on_lockstep_retries(jb: JB):
    for i in range(4):
        _ladder(jb, f"c{i}", [0.5, 1.0], t0=0.0)  # identical waits: no jitter, a herd
    res = jb.check("backoff")
    assert res.verdict is F
    assert any("no jitter: retry #1 of 4 of 4 calls" in e.what for e in res.problems())
    assert jb.check("backoff", jitter=False).verdict is not F


@pytest.mark.parametrize("seed", range(40))
def test_backoff_jittered_concurrent_agent_passes_and_fixed_delay_fails_in_every_run(seed: int):
    """Six calls at once on a failing lane, three retries each. Full jitter passes in every run,
    a fixed delay (with the lane's clock noise) fails in every run (lockstep caught 2 of 6 before)."""
    rng = random.Random(seed)
    good, bad = JB(), JB()
    for c in range(6):
        _ladder(good, f"c{c}", [rng.uniform(0, 0.25 * 2**n) for n in range(3)], t0=rng.uniform(0, 0.01))
        _ladder(bad, f"c{c}", [0.2 + rng.uniform(0, 0.0005) for _ in range(3)], t0=rng.uniform(0, 0.01))
    assert good.check("backoff").verdict is not F, good.check("backoff").render(good.j)
    assert good.check("no_hammering").verdict is P
    assert bad.check("backoff").verdict is F


def test_backoff_leaves_retry_after_waits_to_the_server(jb: JB):
    jb.err("fast", 0.0, 0.01, call="c1", status=429, retry_after=1.0)
    jb.err("fast", 1.01, 1.02, call="c1", status=429, retry_after=1.0)
    jb.err("fast", 2.02, 2.03, call="c1", status=429, retry_after=1.0)
    jb.ok("fast", 3.03, 3.5, call="c1")
    assert jb.check("backoff").verdict is U


def test_backoff_unknown_with_too_few_retries(jb: JB):
    _ladder(jb, "c1", [0.5])
    assert jb.check("backoff").verdict is U


# -- no_retry_on_permanent -------------------------------------------------------------------


def test_no_retry_on_permanent_pass_with_fallback(jb: JB):
    jb.err("fast", 0.0, 0.1, status=429, error={"type": "insufficient_quota", "code": "insufficient_quota"})
    jb.ok("slow", 0.2, 1.0)
    res = jb.check("no_retry_on_permanent")
    assert res.verdict is P and "insufficient_quota" in res.evidence[0].what


def test_no_retry_on_permanent_fail_on_sdk_retrying_quota(jb: JB):
    q = {"type": "insufficient_quota", "code": "insufficient_quota", "message": "check your plan and billing"}
    for i in range(3):
        jb.err("fast", i * 0.6, i * 0.6 + 0.1, status=429, fault="quota_exhausted", error=q, retry_count=i)
    res = jb.check("no_retry_on_permanent")
    assert res.verdict is F
    e = res.problems()[0]
    assert e.measured == 2 and e.lane == "fast"
    out = render_failure(res, jb.j)
    assert "quota_exhausted" in out and "429" in out


def test_no_retry_on_permanent_classifies_from_status_and_error(jb: JB):
    jb.err("a", 0.0, 0.1, call="c1", status=400, error={"code": "context_length_exceeded"})
    jb.err("a", 0.2, 0.3, call="c1", status=400, error={"code": "context_length_exceeded"})
    jb.err("b", 0.0, 0.1, call="c2", status=404, error={"code": "model_not_found"})
    jb.err("b", 0.2, 0.3, call="c2", status=404)
    jb.err("c", 0.0, 0.1, call="c3", status=400, error={"message": "missing field"})  # not permanent
    jb.err("c", 0.2, 0.3, call="c3", status=400, error={"message": "missing field"})
    res = jb.check("no_retry_on_permanent")
    assert {e.call for e in res.problems()} == {"c1", "c2"}


def test_no_retry_on_permanent_allows_one_auth_refresh(jb: JB):
    jb.err("fast", 0.0, 0.1, status=401, fault="auth_revoked")
    jb.ok("fast", 0.2, 0.5)
    assert jb.check("no_retry_on_permanent").verdict is F
    assert jb.check("no_retry_on_permanent", auth_refresh_retries=1).verdict is P


def test_no_retry_on_permanent_unknown_without_permanent_errors(jb: JB):
    jb.err("fast", 0.0, 0.1, status=503)
    jb.err("fast", 0.5, 0.6, status=429, error={"type": "requests", "code": "rate_limit_exceeded"})
    assert jb.check("no_retry_on_permanent").verdict is U
