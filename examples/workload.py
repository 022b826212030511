"""A paced workload for drills: the calls a profile needs, spread over its interesting time span.

Profiles say what goes wrong and when, and (``workload:``) what traffic it takes to see it: a
drill needs calls before, during and after every fault window so that fallback *and* recovery can
be judged, and concurrent calls where a limit only bites under load. These helpers drive an agent
that way (see :mod:`harness.workload`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.drill import Drill
from harness.profile import Profile
from harness.workload import Workload, horizon

__all__ = ["drive", "drive_profile", "profile_horizon", "router_for"]


def profile_horizon(profile: Profile, default: float = 12.0) -> float:
    """Profile seconds a drill of ``profile`` should last (:func:`harness.workload.horizon`)."""
    return horizon(profile, default)


def router_for(drill: Drill, factory: Callable[..., Any] | None = None, **kw: Any) -> Any:
    """A router over every lane of the drill's profile, in profile order (the first is primary)."""
    if factory is None:
        from examples.agents.router import Router as factory
    lanes = [(name, drill.url(name), spec.dialect) for name, spec in drill.profile.lanes.items()]
    kw.setdefault("time_scale", drill.time_scale)
    kw.setdefault("seed", drill.profile.seed)
    return factory(lanes, **kw)


def drive(
    drill: Drill,
    agent: Any,
    calls: int,
    horizon: float,
    *,
    prompt: str = "question {i}",
    concurrency: int = 1,
    **call_kw: Any,
) -> list[Any]:
    """Make ``calls`` calls in groups of ``concurrency`` at once, the groups spread evenly over
    ``horizon`` profile seconds; returns the results in call order. ``call_kw`` go to
    ``agent.complete`` (``headers={}`` sends no call id: the agent as it is)."""
    starts = Workload(calls=calls, concurrency=concurrency, over=horizon).starts(drill.profile)
    t0 = time.monotonic()

    def one(i: int) -> Any:
        wait = t0 + drill.seconds(starts[i]) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return drill.call(agent.complete, prompt.format(i=i), **call_kw)

    if concurrency == 1:
        return [one(i) for i in range(calls)]
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(calls)))


def drive_profile(drill: Drill, agent: Any, **call_kw: Any) -> list[Any]:
    """:func:`drive` with the traffic the drill's profile asks for (its ``workload:``)."""
    w = drill.profile.workload
    return drive(drill, agent, w.calls, w.spread(drill.profile), concurrency=w.concurrency, **call_kw)
