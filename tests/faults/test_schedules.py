"""Schedules are pure: same seed, same decisions; time windows in virtual time."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock
from harness.dialects.base import RequestInfo
from harness.faults.plan import FaultPlan
from harness.journal import Journal
from harness.profile import profile_from_dict
from harness.proxy.hooks import AttemptContext
from harness.schedule import AttemptFacts, ScheduleError, parse_schedule


def facts(n: int, t: float = 0.0, call: str = "c", call_n: int = 1, requested: bool = False) -> AttemptFacts:
    return AttemptFacts(n=n, t=t, call_key=call, call_n=call_n, requested=requested)


def decisions(raw, count: int = 20, **kw) -> list[int]:
    s = parse_schedule(raw)
    return [n for n in range(1, count + 1) if s.applies(facts(n), **kw)]


def test_counting_schedules():
    assert decisions("always", 5) == [1, 2, 3, 4, 5]
    assert decisions("never", 5) == []
    assert decisions({"nth": [2, 5]}) == [2, 5]
    assert decisions({"nth": 3}) == [3]
    assert decisions({"first": 3}) == [1, 2, 3]
    assert decisions({"after": 18}) == [19, 20]
    assert decisions({"sequence": ["fail", "fail", "ok"]}, 7) == [1, 2, 4, 5, 7]
    assert decisions({"sequence": ["fail", "ok"], "repeat": False}, 5) == [1]
    assert decisions({"first": 10, "nth": [3, 12]}) == [3]  # several keys: all must hold


def test_time_windows_and_flapping_in_virtual_time():
    w = parse_schedule({"window": [10, 25]})
    assert [t for t in range(0, 40, 5) if w.applies(facts(1, t=t))] == [10, 15, 20]
    assert [t for t in range(0, 40, 5) if w.applies(facts(1, t=t / 10), time_scale=0.1)] == [10, 15, 20]
    flap = parse_schedule({"every": 10, "for": 3, "offset": 5})
    down = [t for t in range(0, 40) if flap.applies(facts(1, t=t))]
    assert down == [5, 6, 7, 15, 16, 17, 25, 26, 27, 35, 36, 37]
    assert flap.edges(30) == [(5.0, True), (8.0, False), (15.0, True), (18.0, False), (25.0, True), (28.0, False)]
    assert parse_schedule({"window": [2, 4]}).edges(100, time_scale=0.5) == [(1.0, True), (2.0, False)]


def test_per_call_fails_the_first_attempt_of_each_call_only():
    s = parse_schedule({"per_call": 1})
    assert s.applies(facts(1, call="a", call_n=1)) and not s.applies(facts(2, call="a", call_n=2))
    assert s.applies(facts(3, call="b", call_n=1))
    half = parse_schedule({"per_call": 1, "calls": 0.5})
    chosen = [c for c in map(str, range(400)) if half.applies(facts(1, call=c), seed=7, salt="x")]
    assert 150 < len(chosen) < 250
    assert chosen == [c for c in map(str, range(400)) if half.applies(facts(1, call=c), seed=7, salt="x")]


def test_header_schedule_needs_the_request_to_ask():
    s = parse_schedule({"header": True})
    assert not s.applies(facts(1)) and s.applies(facts(1, requested=True))


def test_same_seed_same_decisions_over_1000_attempts():
    a = decisions({"probability": 0.3}, 1000, seed=42, salt="0:f")
    b = decisions({"probability": 0.3}, 1000, seed=42, salt="0:f")
    c = decisions({"probability": 0.3}, 1000, seed=43, salt="0:f")
    assert a == b and a != c
    assert 240 < len(a) < 360  # independent draws: about 30 %
    other_fault = decisions({"probability": 0.3}, 1000, seed=42, salt="1:g")
    assert other_fault != a  # one independent draw per fault per attempt


@pytest.mark.parametrize(
    "raw,field",
    [
        ({"first": -1}, "first"),
        ({"nth": []}, "nth"),
        ({"window": [5, 2]}, "window"),
        ({"window": [1]}, "window"),
        ({"probability": 1.5}, "probability"),
        ({"for": 3}, "for"),
        ({"every": 10}, "every"),
        ({"every": 5, "for": 10}, "for"),
        ({"sequence": ["fail", "maybe"]}, "sequence"),
        ({"calls": 0.5}, "calls"),
        ({"bogus": 1}, "bogus"),
        ({"header": "yes"}, "header"),
    ],
)
def test_bad_schedules_name_their_field(raw, field):
    with pytest.raises(ScheduleError) as err:
        parse_schedule(raw)
    assert err.value.field == field


def test_unknown_schedule_word():
    with pytest.raises(ScheduleError, match="unknown schedule"):
        parse_schedule("sometimes")


def _ctx(lane: str, n: int, headers: dict[str, str] | None = None, call: str | None = None) -> AttemptContext:
    from harness.dialects import dialects_for
    from harness.journal import Attempt

    req = RequestInfo("openai-chat", "chat", "m", False, call or f"fp{n}", 1)
    attempt = Attempt(id=f"a{n}", lane=lane, t_start=0.0, wall_start=0.0, call_id=call)
    return AttemptContext(lane, attempt, dialects_for("openai-chat")[0], req, headers or {})


def _plan(faults, seed=1) -> tuple[FaultPlan, VirtualClock]:
    clock = VirtualClock()
    profile = profile_from_dict(
        {"seed": seed, "lanes": {"a": {"dialect": "openai"}, "b": {"dialect": "openai"}}, "faults": faults}
    )
    return FaultPlan(profile, Journal(clock=clock)), clock


def test_plan_decisions_are_reproducible_over_1000_attempts():
    faults = [
        {"fault": "overloaded", "lane": "a", "schedule": {"probability": 0.2}},
        {"fault": "rate_limit", "lane": "*", "schedule": {"probability": 0.1}},
    ]

    def run(seed):
        plan, _ = _plan(faults, seed)
        out = []
        for n in range(1000):
            iv = plan.decide(_ctx("a" if n % 3 else "b", n))
            out.append(None if iv is None else iv.describe()["name"])
        return out

    first, again, other = run(5), run(5), run(6)
    assert first == again
    assert first != other
    assert 90 < first.count("overloaded") < 180  # ~20 % of the 667 attempts on lane a


def test_plan_time_window_uses_the_journal_clock_and_time_scale():
    plan, clock = _plan([{"fault": "server_error", "lane": "a", "schedule": {"window": [10, 20]}}])
    plan.time_scale = 0.1
    got = []
    for step in range(30):
        clock.set(step / 10)
        got.append(plan.decide(_ctx("a", step)) is not None)
    assert [i for i, hit in enumerate(got) if hit] == list(range(10, 20))


def test_plan_header_fault_is_capped_by_the_profile():
    plan, _ = _plan([{"fault": "server_error", "name": "boom", "lane": "a", "schedule": {"header": True, "max": 2}}])
    asks = [plan.decide(_ctx("a", n, {"x-routechaos-fault": "boom"})) for n in range(4)]
    assert [iv is not None for iv in asks] == [True, True, False, False]
    assert plan.decide(_ctx("a", 9)) is None
    assert plan.decide(_ctx("a", 10, {"x-routechaos-fault": "not-in-profile"})) is None
