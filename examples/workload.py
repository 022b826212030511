"""A paced workload for drills: N calls spread over a profile's interesting time span.

Profiles say what goes wrong and when, not how many calls to make; a drill needs traffic before,
during and after every fault window so that fallback *and* recovery can be judged. These helpers
derive that span from a profile's schedules and pace the calls over it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from harness.drill import Drill
from harness.profile import Profile
from harness.schedule import parse_schedule

__all__ = ["drive", "profile_horizon", "router_for"]


def _recovery_within(profile: Profile) -> float:
    for c in profile.checks:
        if c.name == "recovers_within":
            return float((c.params or {}).get("within", 5.0))
    return 5.0


def profile_horizon(profile: Profile, default: float = 12.0) -> float:
    """Profile seconds a drill of ``profile`` should last to see its fault windows open, close,
    and the recovery after them (at least ``default``)."""
    horizon = default
    recover = _recovery_within(profile)
    for f in profile.faults:
        s = parse_schedule(f.schedule)
        if s.every is not None:
            horizon = max(horizon, s.offset + s.every + (s.for_ or 0.0) + recover + 2.0)
        if s.window is not None:
            lo, hi = s.window
            horizon = max(horizon, lo + 12.0 if math.isinf(hi) else hi + recover + 2.0)
    return horizon


def router_for(drill: Drill, factory: Callable[..., Any] | None = None, **kw: Any) -> Any:
    """A router over every lane of the drill's profile, in profile order (the first is primary)."""
    if factory is None:
        from examples.agents.router import Router as factory
    lanes = [(name, drill.url(name), spec.dialect) for name, spec in drill.profile.lanes.items()]
    kw.setdefault("time_scale", drill.time_scale)
    kw.setdefault("seed", drill.profile.seed)
    return factory(lanes, **kw)


def drive(drill: Drill, agent: Any, calls: int, horizon: float, *, prompt: str = "question {i}") -> list[Any]:
    """Make ``calls`` sequential calls, the i-th starting no earlier than ``i * horizon / calls``
    profile seconds into the drill; returns the results."""
    t0 = time.monotonic()
    spacing = drill.seconds(horizon / calls)
    out = []
    for i in range(calls):
        wait = t0 + i * spacing - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        out.append(drill.call(agent.complete, prompt.format(i=i)))
    return out
