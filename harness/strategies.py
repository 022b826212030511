"""Hypothesis strategies for fault schedules, and a cheap way to run one drill per example.

The strategies compose the way a profile's ``faults:`` list does: a fault (from the list you
give, with its attributes), on a lane, under a schedule (when and how many), and a list of those.
What they draw is plain profile data, so a failing example prints as the YAML you would paste
into a profile, and Hypothesis shrinks it to the smallest schedule that still fails::

    from hypothesis import given, settings
    from harness.strategies import fault_schedules, run_schedule

    @settings(max_examples=15, deadline=None)
    @given(fault_schedules(["server_error", "stream_cut", "stall"], lanes=["primary", "stable"],
                           max_faulty_lanes=1))
    def test_router_degrades_gracefully(faults):
        report = run_schedule(BASE, faults, lambda drill: drive(drill, make_router(drill)))
        assert not report.failed(), report.render()

Cost: a drill per example starts and stops its simulated lanes in about 8 ms (loopback, one
thread and one event loop per drill; measured by ``tests/hypothesis``), so examples are bounded
by the workload, not by the harness, and no lane set has to be shared (and reset) between
examples.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st

from .profile import FaultSpec, Profile, profile_from_dict

__all__ = [
    "DEFAULT_FAULTS",
    "fault_attrs",
    "fault_schedules",
    "fault_spec",
    "measure_drill_overhead",
    "profile_with_faults",
    "run_schedule",
    "schedules",
]

#: attributes used when a strategy is given a bare fault name: short, so drills stay fast
DEFAULT_FAULTS: dict[str, dict[str, Any]] = {
    "server_error": {},
    "overloaded": {},
    "rate_limit": {"retry_after": 1},
    "bad_gateway": {},
    "quota_exhausted": {},
    "model_gone": {},
    "context_length": {},
    "stream_cut": {"after_tokens": 6},
    "stall": {"after_tokens": 4, "duration": 4, "then": "cut"},
    "inband_error": {"after_tokens": 3},
    "malformed_event": {"after_events": 3},
    "no_terminator": {},
    "slow_first_token": {"delay": 4, "keepalive": "ping", "ping_interval": 1},
    "throughput_collapse": {"after_tokens": 4, "tokens_per_second": 5},
    "reset": {},
    "close_before_headers": {},
    "blackhole": {},
    "queue": {"delay": 4},
}

FaultChoice = str | Mapping[str, Any]


def fault_attrs(choice: FaultChoice) -> dict[str, Any]:
    """``{"fault": name, **attrs}`` for a fault given by name (default attributes) or as a mapping."""
    if isinstance(choice, str):
        return {"fault": choice, **DEFAULT_FAULTS.get(choice, {})}
    if "fault" not in choice:
        raise ValueError(f"a fault mapping needs 'fault': {dict(choice)!r}")
    return dict(choice)


@st.composite
def schedules(
    draw: st.DrawFn,
    *,
    kinds: Sequence[str] = ("nth", "first", "window", "probability", "per_call"),
    max_count: int = 4,
    horizon: float = 10.0,
) -> dict[str, Any]:
    """A schedule mapping: which attempts (``nth``), the first N (``first``), a time window in
    ``[0, horizon]`` profile seconds (``window``), a seeded ``probability``, or the first N
    attempts of every call (``per_call``). Each shrinks toward "one attempt, as early as possible"."""
    kind = draw(st.sampled_from(list(kinds)))
    if kind == "nth":
        return {"nth": sorted(draw(st.sets(st.integers(1, 2 * max_count), min_size=1, max_size=max_count)))}
    if kind == "first":
        return {"first": draw(st.integers(1, max_count))}
    if kind == "window":
        start = draw(st.integers(0, int(horizon) - 1))
        length = draw(st.integers(1, max(1, int(horizon) - start)))
        return {"window": [start, start + length]}
    if kind == "probability":
        return {"probability": draw(st.sampled_from([0.25, 0.5, 0.75, 1.0]))}
    if kind == "per_call":
        return {"per_call": draw(st.integers(1, 2))}
    raise ValueError(f"unknown schedule kind {kind!r}")


def fault_spec(
    faults: Sequence[FaultChoice], lanes: Sequence[str], *, schedule: st.SearchStrategy[dict[str, Any]] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """One ``faults:`` entry: a fault from ``faults`` on one of ``lanes`` under a schedule."""
    if not faults or not lanes:
        raise ValueError("fault_spec needs at least one fault and one lane")
    sched = schedule if schedule is not None else schedules()
    return st.builds(
        lambda f, lane, s: {**fault_attrs(f), "lane": lane, "schedule": s},
        st.sampled_from(list(faults)),
        st.sampled_from(list(lanes)),
        sched,
    )


@st.composite
def fault_schedules(
    draw: st.DrawFn,
    faults: Sequence[FaultChoice],
    lanes: Sequence[str],
    *,
    min_faults: int = 1,
    max_faults: int = 3,
    max_faulty_lanes: int | None = None,
    horizon: float = 10.0,
    max_phases: int = 3,
    schedule: st.SearchStrategy[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """A profile's ``faults:`` list: ``min_faults``..``max_faults`` entries from ``faults`` on
    ``lanes``, each with a schedule.

    With ``max_faulty_lanes=K`` (fewer than the lanes), at most K lanes are faulty **at any
    moment**: the drill's first ``horizon`` seconds are cut into 1..``max_phases`` consecutive
    phases, each phase has at most K faulty lanes, and every fault is confined to its phase's
    ``window`` (combined with a per-attempt schedule: a probability, the first attempts of each
    call, ...). K=1 over a primary and a fallback: never both down at once, though each may fail
    in turn. A single phase uses the plain schedules (no window). Everything shrinks toward fewer
    faults and phases, the first lanes, and the simplest schedules."""
    if max_faulty_lanes is None or max_faulty_lanes == len(lanes):
        return draw(st.lists(fault_spec(faults, lanes, schedule=schedule), min_size=min_faults, max_size=max_faults))
    k = max_faulty_lanes
    if not 1 <= k <= len(lanes):
        raise ValueError(f"max_faulty_lanes must be in 1..{len(lanes)}, got {max_faulty_lanes}")
    n_phases = draw(st.integers(1, max(1, min(max_phases, int(horizon)))))
    cuts = sorted(draw(st.sets(st.integers(1, int(horizon) - 1), min_size=n_phases - 1, max_size=n_phases - 1)))
    edges = [0, *cuts, int(horizon)]
    phase_lanes = [
        draw(st.lists(st.sampled_from(list(lanes)), min_size=1, max_size=k, unique=True)) for _ in range(n_phases)
    ]
    if schedule is not None:
        inner = schedule
    elif n_phases == 1:
        inner = schedules(horizon=horizon)
    else:
        inner = st.one_of(st.just({}), schedules(kinds=("probability", "per_call", "first")))
    out = []
    for _ in range(draw(st.integers(min_faults, max_faults))):
        i = draw(st.integers(0, n_phases - 1))
        sched = dict(draw(inner))
        if n_phases > 1:
            sched["window"] = [edges[i], edges[i + 1]]
        out.append(
            {
                **fault_attrs(draw(st.sampled_from(list(faults)))),
                "lane": draw(st.sampled_from(phase_lanes[i])),
                "schedule": sched or "always",
            }
        )
    return out


# -- running one drill per example ------------------------------------------------------------


def profile_with_faults(base: Profile | Mapping[str, Any], faults: Sequence[Mapping[str, Any]]) -> Profile:
    """``base`` (a profile dict, or a loaded profile whose faults are replaced) with ``faults``."""
    if isinstance(base, Profile):
        p = copy.copy(base)
        p.faults = [_fault_spec(f) for f in faults]
        return p
    data = copy.deepcopy(dict(base))
    data["faults"] = [copy.deepcopy(dict(f)) for f in faults]
    return profile_from_dict(data)


def _fault_spec(raw: Mapping[str, Any]) -> FaultSpec:
    attrs = {k: v for k, v in raw.items() if k not in ("fault", "lane", "schedule", "name", "description")}
    return FaultSpec(
        fault=str(raw["fault"]), lane=str(raw.get("lane", "*")), schedule=raw.get("schedule", "always"), attrs=attrs
    )


def run_schedule(
    base: Profile | Mapping[str, Any],
    faults: Sequence[Mapping[str, Any]],
    workload: Callable[[Any], Any],
    *,
    checks: Any = None,
    time_scale: float | None = None,
) -> Any:
    """Start a drill of ``base`` with ``faults``, run ``workload(drill)``, stop, and return the
    :class:`~harness.checks.Report` for ``checks`` (default: the profile's)."""
    from .drill import Drill

    with Drill(profile_with_faults(base, faults), time_scale=time_scale) as drill:
        workload(drill)
        return drill.evaluate(checks)


def measure_drill_overhead(base: Profile | Mapping[str, Any], repeat: int = 10) -> float:
    """Median seconds to start and stop a drill of ``base`` (no workload)."""
    from .drill import Drill

    profile = profile_with_faults(base, [])
    costs = []
    for _ in range(repeat):
        t = time.perf_counter()
        Drill(profile).start().stop()
        costs.append(time.perf_counter() - t)
    costs.sort()
    return costs[len(costs) // 2]
