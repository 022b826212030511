"""Episodes inferred from the wire: steps, their split, restarts, marked tool spans, estimates."""

from __future__ import annotations

import pytest

from harness.episodes import episodes, estimate_on, pacing_of, stable_lane, tool_spans

from .loopjb import LoopJB, call, history


@pytest.fixture
def lj() -> LoopJB:
    return LoopJB()


def three_steps(lj: LoopJB) -> None:
    """Step 0 fails on the premium lane and falls back; step 1 is cut once then served; step 2 ends."""
    lj.err("premium", 0.0, 0.2, fingerprint="f0")
    lj.step_ok("stable", 0.5, 1.5, "f0", tools=[call("s1")], ttft=0.4)
    lj.cut("premium", 2.0, 2.3, fingerprint="f1", parent_fingerprint="f0", tool_history=history("s1"), call=None)
    lj.step_ok("premium", 2.4, 2.6, "f1", parent="f0", tools=[call("s2")], hist=history("s1"), ttft=0.05)
    lj.step_ok("premium", 3.6, 3.8, "f2", parent="f1", hist=history("s1", "s2"), ttft=0.05)


def test_a_loop_is_one_episode_across_lanes_with_its_time_split(lj):
    three_steps(lj)
    (ep,) = episodes(lj.j)
    assert [s.fingerprint for s in ep.steps] == ["f0", "f1", "f2"]
    assert ep.final and ep.lanes == ["premium", "stable"]
    s0, s1, s2 = ep.steps
    assert s0.served.lane == "stable" and s1.served.t_start == 2.4
    m0, m1, m2 = s0.metrics(), s1.metrics(), s2.metrics()
    assert m0 == pytest.approx({"route": 0.5, "model_wait": 0.4, "generation": 0.6, "tool_wait": 0.5, "total": 2.0})
    assert m1 == pytest.approx({"route": 0.4, "model_wait": 0.05, "generation": 0.15, "tool_wait": 1.0, "total": 1.6})
    assert m2 == pytest.approx({"route": 0.0, "model_wait": 0.05, "generation": 0.15, "total": 0.2})
    total = ep.metrics()
    assert total["total"] == pytest.approx(3.8)
    assert total["route"] == pytest.approx(0.9) and total["tool_wait"] == pytest.approx(1.5)


def test_the_served_answer_is_the_one_whose_tool_calls_the_next_step_carries(lj):
    lj.step_ok("premium", 0.0, 0.5, "f0", tools=[call("bad", valid=False)])  # complete, but malformed
    lj.step_ok("premium", 0.6, 1.0, "f0", tools=[call("good")])
    lj.step_ok("premium", 1.5, 1.9, "f1", parent="f0", hist=history("good"))
    (ep,) = episodes(lj.j)
    assert len(ep.steps[0].attempts) == 2 and ep.steps[0].served.t_start == 0.6
    assert ep.steps[0].metrics()["route"] == pytest.approx(0.6)


def test_separate_tasks_are_separate_episodes_and_a_restart_supersedes(lj):
    lj.step_ok("premium", 0.0, 0.5, "task-a", tools=[call("a1")])
    lj.step_ok("premium", 0.1, 0.6, "task-b", tools=[call("b1")])
    lj.cut("premium", 1.0, 1.2, fingerprint="a-1", parent_fingerprint="task-a", call=None)
    lj.step_ok("premium", 1.5, 2.0, "task-a", tools=[call("a1")])  # the whole task again
    lj.step_ok("premium", 2.5, 3.0, "a-1", parent="task-a", hist=history("a1"))
    lj.step_ok("premium", 2.6, 3.1, "b-1", parent="task-b", hist=history("b1"))
    eps = episodes(lj.j)
    assert [(e.key, len(e.steps), e.final) for e in eps] == [
        ("e0001", 2, False),
        ("e0002", 2, True),
        ("e0003", 2, True),
    ]
    assert eps[0].superseded_by == "e0003" and eps[2].restart_of == "e0001"
    assert eps[0].steps[1].served is None and "route" not in eps[0].steps[1].metrics()


def test_many_episodes_each_keep_their_own_steps(lj):
    for i in range(300):
        t = i * 0.01
        lj.step_ok("premium", t, t + 0.5, f"t{i}", tools=[call(f"x{i}")])
        lj.step_ok("premium", t + 1.0, t + 1.5, f"t{i}-1", parent=f"t{i}", hist=history(f"x{i}"))
    eps = episodes(lj.j)
    assert len(eps) == 300 and all(len(e.steps) == 2 and e.final for e in eps)
    assert all(e.steps[0].fingerprint == f"t{i}" for i, e in enumerate(eps))


def test_marked_tool_spans_count_in_the_tool_wait_they_fall_in(lj):
    three_steps(lj)
    lj.mark("tool_start", 1.6, span="t1", name="run_tests")
    lj.mark("tool_end", 1.9, span="t1", name="run_tests")
    lj.mark("tool_start", 2.7, span="t2", name="read_file")
    lj.mark("tool_end", 3.5, span="t2", name="read_file")
    lj.mark("tool_start", 9.0, span="t3", name="never_closed")
    assert [s.name for s in tool_spans(lj.j)] == ["run_tests", "read_file"]
    (ep,) = episodes(lj.j)
    assert ep.steps[0].tool_marked == pytest.approx(0.3) and ep.steps[0].tool_names == ["run_tests"]
    assert ep.metrics()["tool_marked"] == pytest.approx(1.1)


def test_a_span_inside_two_episodes_tool_waits_is_counted_in_neither(lj):
    for task in ("a", "b"):
        lj.step_ok("premium", 0.0, 0.5, task, tools=[call(task)])
        lj.step_ok("premium", 2.0, 2.5, task + "1", parent=task, hist=history(task))
    lj.mark("tool_start", 1.0, span="t1", name="shared")
    lj.mark("tool_end", 1.2, span="t1", name="shared")
    assert [e.metrics()["tool_marked"] for e in episodes(lj.j)] == [0.0, 0.0]


def test_the_stable_only_estimate_uses_the_stable_lane_pacing(lj):
    three_steps(lj)
    lj.mark(
        "drill_start",
        0.0,
        lanes=["premium", "stable"],
        time_scale=1.0,
        pacing={"premium": {"ttft": 0.05, "tokens_per_second": 1000}, "stable": {"ttft": 0.4, "tokens_per_second": 10}},
    )
    pacing, order = pacing_of(lj.j)
    assert stable_lane(pacing, order) == "stable"
    (ep,) = episodes(lj.j)
    est = estimate_on(ep, "stable", pacing)
    # step 0 was served by stable (0.4 + 0.6 kept), steps 1 and 2 at 0.4 + 10 tokens / 10 per s
    assert est.estimated == pytest.approx(1.0 + 1.4 + 1.4 + 1.5)
    assert est.saved == pytest.approx(est.estimated - 3.8)


def test_pacing_follows_the_view_of_a_compressed_drill(lj):
    lj.mark("drill_start", 0.0, lanes=["p", "s"], time_scale=0.1, pacing={"s": {"ttft": 0.5, "tokens_per_second": 60}})
    raw, _ = pacing_of(lj.j)  # real seconds
    assert raw["s"]["ttft"] == pytest.approx(0.05) and raw["s"]["tokens_per_second"] == pytest.approx(600)
    prof, _ = pacing_of(lj.j.rescaled(10.0))
    assert prof["s"]["ttft"] == pytest.approx(0.5) and prof["s"]["tokens_per_second"] == pytest.approx(60)
