"""Clocks: the one place that reads time, so pure code can be driven by virtual time in tests."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "VirtualClock"]


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""
        ...


class MonotonicClock:
    """Real time, from ``time.monotonic``."""

    def now(self) -> float:
        return time.monotonic()


class VirtualClock:
    """Time that moves only when told to: schedules, limiters and checks are tested with it."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self._t += seconds

    def set(self, t: float) -> None:
        if t < self._t:
            raise ValueError("virtual time cannot go backwards")
        self._t = t
