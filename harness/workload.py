"""The traffic a profile needs: how many calls, how many at once, over how long.

A profile says what goes wrong and when; whether a drill *sees* it depends on the traffic. A
rate limit of 30 requests a minute never answers 429 to twenty sequential calls, a concurrency cap
of four slots never queues one call at a time, and recovery after a window cannot be judged if the
calls end inside it. A profile's ``workload:`` says what it needs, so the example agents, the test
suite and ``routechaos drill`` (through ``ROUTECHAOS_CALLS`` / ``_CONCURRENCY`` / ``_SPREAD``)
drive it that way::

    workload: {calls: 40, concurrency: 4}     # 10 groups of 4 calls at once, over the horizon

Calls start in groups of ``concurrency`` at once, the groups spread evenly over ``over`` profile
seconds (default: the profile's horizon, long enough for every fault window to open, close and be
recovered from).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Workload", "horizon"]


class _Scheduled(Protocol):
    @property
    def schedule(self) -> Any: ...


class _Checked(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...


class _ProfileParts(Protocol):
    """What the workload reads of a :class:`harness.profile.Profile`: its faults' schedules and its
    checks' parameters. Typed by what it reads, so that this module need not import the profile,
    which holds a :class:`Workload` (no import circle, not even for the type checker)."""

    @property
    def faults(self) -> Sequence[_Scheduled]: ...
    @property
    def checks(self) -> Sequence[_Checked]: ...


@dataclass(frozen=True, slots=True)
class Workload:
    """How a drill of a profile should be driven (see the module's docstring)."""

    calls: int = dataclasses.field(default=20, metadata={"doc": "how many calls a drill makes", "min": 1})
    concurrency: int = dataclasses.field(default=1, metadata={"doc": "calls started at once", "min": 1})
    over: float | None = dataclasses.field(
        default=None, metadata={"doc": "profile seconds the calls are spread over (default: the profile's horizon)"}
    )

    @classmethod
    def parse(cls, raw: Any, error: Callable[[tuple[str, ...], str], Exception]) -> Workload:
        """From a profile's ``workload:`` mapping; ``error(path, message)`` builds the exception."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise error((), "must be a mapping: calls:, concurrency:, over:")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                raise error((str(key),), f"unknown key; expected one of {', '.join(sorted(known))}")
            if key == "over":
                number = isinstance(value, int | float) and not isinstance(value, bool)
                ok = value is None or (number and math.isfinite(value) and value > 0)
                if not ok:
                    raise error((key,), "must be a number of seconds > 0")
                kwargs[key] = None if value is None else float(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise error((key,), "must be an integer >= 1")
                kwargs[key] = value
        return cls(**kwargs)

    def spread(self, profile: _ProfileParts) -> float:
        """Profile seconds the calls are spread over."""
        return self.over if self.over is not None else horizon(profile)

    def starts(self, profile: _ProfileParts) -> list[float]:
        """Profile seconds at which each call starts: groups of ``concurrency``, evenly spaced."""
        groups = math.ceil(self.calls / self.concurrency)
        step = self.spread(profile) / groups
        return [(i // self.concurrency) * step for i in range(self.calls)]

    def env(self, profile: _ProfileParts) -> dict[str, str]:
        """The environment variables an agent subprocess reads its traffic from."""
        return {
            "ROUTECHAOS_CALLS": str(self.calls),
            "ROUTECHAOS_CONCURRENCY": str(self.concurrency),
            "ROUTECHAOS_SPREAD": f"{self.spread(profile):g}",
        }


def _recovery_within(profile: _ProfileParts) -> float:
    for c in profile.checks:
        if c.name == "recovers_within":
            return float((c.params or {}).get("within", 5.0))
    return 5.0


def horizon(profile: _ProfileParts, default: float = 12.0) -> float:
    """Profile seconds a drill of ``profile`` should last to see its fault windows open, close,
    and the recovery after them (at least ``default``)."""
    from .schedule import parse_schedule

    out = default
    recover = _recovery_within(profile)
    for f in profile.faults:
        s = parse_schedule(f.schedule)
        if s.every is not None:
            out = max(out, s.offset + s.every + (s.for_ or 0.0) + recover + 2.0)
        if s.window is not None:
            lo, hi = s.window
            out = max(out, lo + 12.0 if math.isinf(hi) else hi + recover + 2.0)
    return out
