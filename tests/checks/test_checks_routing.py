from __future__ import annotations

from harness.checks import Verdict, render_failure

from .builder import JB

P, F, U = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN

FB = {"primary": "ultraspeed", "fallback": "stable"}


# -- fallback_within -------------------------------------------------------------------------


def test_fallback_within_pass_reports_actual(jb: JB):
    jb.err("ultraspeed", 0.0, 0.2, status=529, fault="overloaded")
    jb.ok("stable", 0.3, 1.5, ttft=0.2)
    res = jb.check("fallback_within", **FB, within=2.0)
    assert res.verdict is P
    (e,) = res.evidence
    assert abs(e.measured - 1.3) < 1e-9 and e.bound == 2.0 and e.lane == "stable"
    ft = jb.check("fallback_within", **FB, within=0.4, measure="first_token")
    assert ft.verdict is P and abs(ft.evidence[0].measured - 0.3) < 1e-9


def test_fallback_within_judges_calls_made_while_primary_refused_connections(jb: JB):
    """A refused connection leaves no attempt: calls that start inside a lane_down window and
    never reach the primary are judged from their start to the fallback's answer."""
    jb.mark("lane_down", 1.0, "ultraspeed", fault="refuse")
    jb.call("c1", 1.5, 3.0, fingerprint="fp-c1")
    jb.ok("stable", 1.8, 3.0, fingerprint="fp-c1")
    jb.call("c2", 2.0, 9.0, fingerprint="fp-c2")
    jb.ok("stable", 8.0, 9.0, fingerprint="fp-c2")  # the agent waited on the dead lane
    jb.mark("lane_up", 5.0, "ultraspeed", fault="refuse")
    res = jb.check("fallback_within", **FB, within=2.0)
    assert res.verdict is F
    verdicts = {e.call: e.verdict for e in res.evidence}
    assert verdicts == {"c1": P, "c2": F}
    assert abs(next(e for e in res.evidence if e.call == "c1").measured - 1.5) < 1e-9


def test_fallback_within_fail_when_too_late(jb: JB):
    jb.timeout("ultraspeed", 0.0, 10.0)  # blackhole until the client's read timeout
    jb.timeout("ultraspeed", 10.5, 20.5)
    jb.ok("stable", 21.0, 22.0)
    res = jb.check("fallback_within", **FB, within=5.0)
    assert res.verdict is F
    out = render_failure(res, jb.j)
    assert "blackhole" in out and "timeout" in out and "ultraspeed" in out and "stable" in out


def test_fallback_within_fail_when_never_tried_or_clean_error(jb: JB):
    jb.err("ultraspeed", 0.0, 0.1, call="c1", status=503)
    jb.call("c1", 0.0, 0.2, "error", error_type="InternalServerError")
    jb.err("ultraspeed", 0.0, 0.1, call="c2", status=503)
    jb.err("stable", 0.2, 0.3, call="c2", status=503)
    res = jb.check("fallback_within", **FB, within=5.0)
    assert res.verdict is F
    whats = {e.call: e.what for e in res.problems()}
    assert "never tried" in whats["c1"] and "tried 1 times" in whats["c2"]


def test_fallback_within_primary_recovery(jb: JB):
    jb.err("ultraspeed", 0.0, 0.1, status=500)
    jb.ok("ultraspeed", 0.6, 1.0)
    assert jb.check("fallback_within", **FB, within=2.0).verdict is P
    assert jb.check("fallback_within", **FB, within=2.0, allow_primary_recovery=False).verdict is F


def test_fallback_within_unknown(jb: JB):
    jb.ok("ultraspeed", 0.0, 1.0, call="c1")
    assert jb.check("fallback_within", **FB, within=2.0).verdict is U  # primary never failed
    jb.cut("ultraspeed", 0.0, 1.0, call="c2")
    jb.call("c2", 0.0, 1.0, "unknown")
    assert jb.check("fallback_within", **FB, within=2.0).verdict is U


# -- recovers_within -------------------------------------------------------------------------


def test_recovers_within_pass(jb: JB):
    jb.err("ultraspeed", 0.5, 0.6, call="c1")
    jb.ok("stable", 0.7, 1.0, call="c1")
    jb.window("ultraspeed", 0.0, 2.0)
    jb.ok("stable", 2.5, 3.0, call="c2")
    jb.ok("ultraspeed", 3.5, 4.0, call="c3")
    res = jb.check("recovers_within", lane="ultraspeed", within=2.0)
    assert res.verdict is P
    assert abs(res.evidence[0].measured - 1.5) < 1e-9


def test_recovers_within_fail_when_traffic_stays_elsewhere(jb: JB):
    jb.window("ultraspeed", 0.0, 2.0)
    for i in range(10):
        jb.ok("stable", 2.0 + i, 2.5 + i, call=f"c{i}")
    res = jb.check("recovers_within", lane="ultraspeed", within=3.0)
    assert res.verdict is F
    assert "stable" in res.problems()[0].what
    assert "stable" in render_failure(res, jb.j)


def test_recovers_within_unknown_without_traffic_or_window(jb: JB):
    assert jb.check("recovers_within", lane="ultraspeed", within=3.0).verdict is U  # no window
    jb.window("ultraspeed", 0.0, 2.0)
    jb.ok("stable", 2.5, 3.0)
    assert jb.check("recovers_within", lane="ultraspeed", within=3.0).verdict is U  # drill ended
    assert jb.check("recovers_within", lane="ultraspeed", within=0.1, after=2.0).verdict is F


def test_recovers_within_window_reopened_is_unknown(jb: JB):
    jb.window("ultraspeed", 0.0, 2.0)
    jb.window("ultraspeed", 2.5, 9.0)
    jb.ok("stable", 3.0, 3.5)
    jb.ok("ultraspeed", 9.1, 9.5)
    res = jb.check("recovers_within", lane="ultraspeed", within=1.0)
    assert [e.verdict for e in res.evidence] == [U, P]


# -- circuit_opens ---------------------------------------------------------------------------


def _dead_lane(jb: JB, extra: list[float]) -> None:
    for i in range(3):
        jb.err("ultraspeed", 0.1 * i, 0.1 * i + 0.05, call=f"c{i}", status=503, fault="model_gone")
    for i, t in enumerate(extra):
        jb.err("ultraspeed", t, t + 0.05, call=f"x{i}", status=503, fault="model_gone")
    for i in range(20):  # steady traffic on the fallback
        jb.ok("stable", 0.3 + 0.25 * i, 0.4 + 0.25 * i, call=f"s{i}")


def test_circuit_opens_pass_with_probe(jb: JB):
    _dead_lane(jb, extra=[2.0])  # one probe after the 1 s cooldown
    res = jb.check("circuit_opens", lane="ultraspeed", failures=3, max_attempts_while_open=0, probe_within=3.0)
    assert res.verdict is P, res.summary


def test_circuit_opens_fail_when_lane_keeps_getting_traffic(jb: JB):
    _dead_lane(jb, extra=[0.4, 0.5, 0.6, 0.7])
    res = jb.check("circuit_opens", lane="ultraspeed", failures=3, max_attempts_while_open=1, cooldown=1.0)
    assert res.verdict is F
    e = res.problems()[0]
    assert e.measured == 4 and e.bound == 1
    out = render_failure(res, jb.j)
    assert "model_gone" in out and "503" in out


def test_circuit_opens_fail_when_never_probed(jb: JB):
    _dead_lane(jb, extra=[])
    res = jb.check("circuit_opens", lane="ultraspeed", probe_within=2.0)
    assert res.verdict is F and "not probed" in res.problems()[0].what


def test_circuit_opens_unknown(jb: JB):
    jb.err("ultraspeed", 0.0, 0.1, call="c1")
    jb.ok("ultraspeed", 0.2, 0.3, call="c2")
    jb.err("ultraspeed", 0.4, 0.5, call="c3")
    assert jb.check("circuit_opens", lane="ultraspeed").verdict is U  # never 3 in a row
    jb.err("ultraspeed", 0.6, 0.7, call="c4")
    jb.err("ultraspeed", 0.8, 0.9, call="c5")
    res = jb.check("circuit_opens", lane="ultraspeed")  # 3 in a row, then the drill ends
    assert res.verdict is U and "no traffic" in res.evidence[0].what


def test_recovers_within_passes_when_the_first_traffic_after_the_window_goes_back(jb: JB):
    """The workload was quiet after the window closed; its first call went straight back to the
    lane: recovered at the first opportunity (this failed before, as "no answer within 6 s")."""
    jb.window("fast", 0.0, 4.0)
    jb.ok("fast", 11.8, 12.2, call="c1")
    jb.ok("slow", 14.0, 15.0, call="c2")
    res = jb.check("recovers_within", lane="fast", within=6.0)
    assert res.verdict is P, res.render(jb.j)
    assert "the first traffic since" in res.evidence[0].what


def test_recovers_within_fails_when_traffic_went_elsewhere_after_the_bound(jb: JB):
    jb.window("fast", 0.0, 4.0)
    jb.ok("slow", 11.0, 11.5, call="c1")
    jb.ok("fast", 11.8, 12.2, call="c2")
    res = jb.check("recovers_within", lane="fast", within=6.0)
    assert res.verdict is F
    assert "first answer on fast 7.800s after" in res.problems()[0].what


def test_recovers_within_leaves_out_windows_closed_after_the_traffic(jb: JB):
    jb.window("fast", 0.0, 4.0)
    jb.ok("fast", 5.0, 5.5, call="c1")
    jb.window("fast", 10.0, 14.0)  # a lane that flaps until the drill ends
    res = jb.check("recovers_within", lane="fast", within=6.0)
    assert res.verdict is P and "nothing left to recover" in res.summary


def test_recovers_within_leaves_out_a_window_whose_recovery_the_drill_ended_inside(jb: JB):
    """The lane flaps until near the end: the last window closed while calls still came, but the
    drill's traffic ended before ``within`` had passed. That says nothing about the agent; the
    windows before it judge (a workload that runs late on a loaded machine meets one more window)."""
    jb.window("fast", 0.0, 4.0)
    jb.ok("fast", 5.0, 5.5, call="c1")
    jb.window("fast", 10.0, 14.0)
    jb.ok("slow", 14.5, 15.0, call="c2")  # within the 6 s a router may still wait out its cooldown
    jb.ok("slow", 16.0, 16.5, call="c3")
    res = jb.check("recovers_within", lane="fast", within=6.0)
    assert res.verdict is P, res.render(jb.j)
    assert "the drill ended before their recovery could be seen" in res.summary
    # an agent that never came back after the first window still fails on it
    jb2 = JB()
    jb2.window("fast", 0.0, 4.0)
    for i in range(6):
        jb2.ok("slow", 5.0 + 2 * i, 5.5 + 2 * i, call=f"c{i}")
    jb2.window("fast", 14.0, 15.0)
    assert jb2.check("recovers_within", lane="fast", within=6.0).verdict is F


def test_circuit_opens_passes_an_agent_that_abandons_a_lane_before_a_circuit_is_needed(jb: JB):
    """A permanent error (revoked key): the agent stops using the lane after one failure, which is
    what an open circuit is for (this was UNKNOWN before: "never failed 2 times in a row")."""
    jb.err("fast", 0.0, 0.1, call="c1", status=401)
    jb.ok("slow", 0.2, 1.0, call="c1")
    for i in range(2, 6):
        jb.ok("slow", i * 1.0, i * 1.0 + 0.5, call=f"c{i}")
    res = jb.check("circuit_opens", lane="fast", failures=2, max_attempts_while_open=0, cooldown=60)
    assert res.verdict is P, res.summary
    jb2 = JB()
    jb2.ok("fast", 0.0, 0.5, call="c1")
    assert jb2.check("circuit_opens", lane="fast").verdict is U  # never failed: nothing to judge
