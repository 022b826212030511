"""A hand-made failing drill for the report tests: explicit times, no sockets, no sleeps.

Three lanes in the profile, one never tried. call c1 is answered whole on ``fast``; c2 is a
stream cut that the agent accepted as its answer (the bug no_truncated_success exists for); c3
fails on ``fast`` and is rescued by ``stable`` inside a fault window; c4 errors out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.checks import Report, evaluate_all
from harness.journal import Journal
from tests.checks.builder import JB, text


@dataclass
class FakeProfile:
    name: str = "hand-made"
    seed: int = 7
    time_scale: float = 1.0
    description: str = "three lanes, one never tried"
    lanes: dict[str, Any] = field(default_factory=lambda: {"fast": None, "stable": None, "spare": None})
    faults: list[Any] = field(default_factory=list)
    toxics: list[Any] = field(default_factory=list)


@dataclass
class Drilled:
    journal: Journal
    report: Report
    profile: FakeProfile


def make_failing_drill() -> Drilled:
    jb = JB()
    jb.ok("fast", 0.0, 0.5, call="c1")
    jb.call("c1", 0.0, 0.6, text=text("c1"), lane="fast")
    jb.cut("fast", 1.0, 1.4, call="c2", tokens=3, expected=10)
    jb.call("c2", 1.0, 1.5, text=text("c2", 3), lane="fast")  # a prefix, reported as a success
    jb.window("fast", 2.0, 4.0, fault="overloaded")
    jb.err("fast", 2.1, 2.2, call="c3", fault="overloaded")
    jb.ok("stable", 2.3, 3.0, call="c3")
    jb.call("c3", 2.1, 3.1, text=text("c3"), lane="stable")
    jb.err("fast", 3.5, 3.6, call="c4", fault="overloaded")
    jb.call("c4", 3.5, 3.7, outcome="error", error="boom", error_type="InternalServerError")
    report = evaluate_all(jb.j, ["no_truncated_success", "no_lost_calls"])
    return Drilled(jb.j, report, FakeProfile())


@pytest.fixture
def failing() -> Drilled:
    return make_failing_drill()


@pytest.fixture
def jb() -> JB:
    return JB()
