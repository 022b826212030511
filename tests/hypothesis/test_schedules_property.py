"""Properties over drawn fault schedules: the reference router degrades gracefully whenever a
healthy lane is left, and Hypothesis finds (and shrinks to one fault) a planted flaw."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from examples.agents.flawed import AcceptsCutStream
from examples.agents.router import Router
from examples.workload import drive, router_for
from harness.checks import Verdict
from harness.profile import profile_from_dict
from harness.schedule import parse_schedule
from harness.strategies import (
    fault_schedules,
    fault_spec,
    measure_drill_overhead,
    profile_with_faults,
    run_schedule,
    schedules,
)

LANES = ["primary", "stable"]
BASE: dict[str, Any] = {
    "name": "hypothesis-two-lanes",
    "seed": 3,
    "lanes": {
        "primary": {
            "dialect": "openai-chat",
            "simulator": {"tokens_per_second": 200, "ttft": 0.2, "answer_tokens": 24},
        },
        "stable": {"dialect": "anthropic", "simulator": {"tokens_per_second": 100, "ttft": 0.3, "answer_tokens": 24}},
    },
}
TIME_SCALE = 0.02  # finding the planted flaw: fast, and timing-insensitive
PROPERTY_TIME_SCALE = 0.04  # the property: the router's watchdog must not mistake a busy CI box for a stall
CALLS = 5
HORIZON = 8.0
GRACEFUL = {"no_lost_calls": {}, "no_truncated_success": {}, "retries_bounded": {"max_attempts_per_call": 5}}
FAULTS = [
    "server_error",
    "overloaded",
    "rate_limit",
    "quota_exhausted",
    "model_gone",
    "stream_cut",
    "stall",
    "inband_error",
    "malformed_event",
    "no_terminator",
    "slow_first_token",
    "reset",
    "blackhole",
]


def workload(agent: type[Router] = Router, calls: int = CALLS, results: list[Any] | None = None) -> Any:
    def run(drill: Any) -> None:
        out = drive(drill, router_for(drill, agent), calls, HORIZON)
        if results is not None:
            results.extend(out)

    return run


# -- the strategies themselves ------------------------------------------------------------------


def faulty_lanes_at(faults: list[dict[str, Any]], t: float) -> set[str]:
    """Lanes that may be faulty at profile time ``t`` (a fault without a window: always)."""
    out = set()
    for f in faults:
        s = parse_schedule(f["schedule"])
        if s.window is None or s.window[0] <= t < s.window[1]:
            out.add(f["lane"])
    return out


@settings(max_examples=60, deadline=None, database=None)
@given(fault_schedules(FAULTS, LANES, max_faults=4, max_faulty_lanes=1, horizon=HORIZON))
def test_drawn_schedules_never_have_two_faulty_lanes_at_once(faults: list[dict[str, Any]]) -> None:
    profile = profile_with_faults(BASE, faults)  # validates every fault and schedule
    assert 1 <= len(profile.faults) <= 4
    for tenth in range(int(HORIZON * 10) + 20):
        assert len(faulty_lanes_at(faults, tenth / 10)) <= 1, faults


@settings(max_examples=40, deadline=None, database=None)
@given(st.data())
def test_fault_spec_and_schedule_compose(data: st.DataObject) -> None:
    sched = data.draw(schedules(kinds=("window",), horizon=5.0))
    lo, hi = sched["window"]
    assert 0 <= lo < hi <= 5
    spec = data.draw(fault_spec([{"fault": "stream_cut", "after_tokens": 2}], ["stable"]))
    assert spec["fault"] == "stream_cut" and spec["lane"] == "stable" and spec["after_tokens"] == 2
    profile_from_dict({**BASE, "faults": [spec]})


def test_drill_start_stop_is_cheap() -> None:
    """A drill per example is affordable: start + stop of two simulated lanes (target < 20 ms;
    asserted with slack for loaded CI machines)."""
    median = measure_drill_overhead(BASE, repeat=15)
    print(f"drill start+stop median: {median * 1000:.1f} ms")
    assert median < 0.06


# -- the property ---------------------------------------------------------------------------------


@settings(
    max_examples=15,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(fault_schedules(FAULTS, LANES, max_faults=3, max_faulty_lanes=1, horizon=HORIZON))
def test_reference_router_degrades_gracefully_with_one_faulty_lane(faults: list[dict[str, Any]]) -> None:
    results: list[Any] = []
    report = run_schedule(BASE, faults, workload(results=results), checks=GRACEFUL, time_scale=PROPERTY_TIME_SCALE)
    failed = [r for r in report.results if r.verdict is Verdict.FAIL]
    assert not failed, f"faults={faults}\n{report.render()}"
    # a call may end in a clean error only when every lane failed it in turn (one lane healing
    # while the other breaks, inside one call) or was deliberately left out (disabled by an
    # earlier permanent error, circuit open): never because the router forgot a lane
    for r in results:
        if r.error:
            tried = {a.split(":")[0] for a in r.attempts}
            assert tried == set(LANES), f"faults={faults}\ngave up after considering only {tried}: {r.attempts}"


# -- finding a planted flaw ---------------------------------------------------------------------


def _truncates(faults: list[dict[str, Any]]) -> bool:
    report = run_schedule(
        BASE, faults, workload(AcceptsCutStream, calls=3), checks={"no_truncated_success": {}}, time_scale=TIME_SCALE
    )
    return any(r.verdict is Verdict.FAIL for r in report.results)


def test_hypothesis_finds_the_cut_stream_flaw_and_shrinks_to_one_fault() -> None:
    t0 = time.monotonic()
    minimal = find(
        fault_schedules(["server_error", "overloaded", "stall", "stream_cut", "rate_limit"], LANES, max_faults=4),
        _truncates,
        settings=settings(
            max_examples=60,
            database=None,
            derandomize=True,
            deadline=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        ),
    )
    print(f"minimal failing schedule ({time.monotonic() - t0:.1f}s): {minimal}")
    assert len(minimal) == 1, minimal
    (fault,) = minimal
    assert fault["fault"] == "stream_cut" and fault["lane"] == "primary", minimal
    # replaying the minimal schedule fails the same way, and the reference router survives it
    assert _truncates(minimal)
    report = run_schedule(BASE, minimal, workload(Router, calls=3), checks=GRACEFUL, time_scale=TIME_SCALE)
    assert not report.failed(), report.render()


@pytest.mark.parametrize("k", [0, 3])
def test_max_faulty_lanes_is_validated(k: int) -> None:
    with pytest.raises(ValueError):
        find(fault_schedules(FAULTS, LANES, max_faulty_lanes=k), lambda _: True)
