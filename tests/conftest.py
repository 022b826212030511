"""Shared fixtures: lanes on loopback in a background thread, with a journal to inspect."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.canonical import canonical_text, fingerprint
from harness.journal import Journal
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import LaneSpec, Profile
from harness.simulator import SimSettings

FAST = SimSettings(tokens_per_second=2000.0, ttft=0.005, answer_tokens=24)


def expected_answer(prompt: str, tokens: int = FAST.answer_tokens, system: str = "") -> str:
    """The simulator's canonical answer to a single user turn."""
    return canonical_text(fingerprint(system, [("user", prompt)]), tokens)


@pytest.fixture
def start_lanes() -> Iterator[Callable[..., BackgroundLanes]]:
    """Start lanes from a Profile (or ``name=dialect`` pairs) in a background thread; stopped after."""
    started: list[BackgroundLanes] = []

    def start(
        profile: Profile | None = None, journal: Journal | None = None, faults: Any = None, **dialects: str
    ) -> BackgroundLanes:
        if profile is None:
            profile = Profile(
                name="test",
                lanes={n: LaneSpec(n, d, simulator=FAST) for n, d in (dialects or {"lane": "openai"}).items()},
            )
        bg = BackgroundLanes(LaneSet(profile, journal if journal is not None else Journal(), faults=faults)).start()
        started.append(bg)
        return bg

    yield start
    for bg in reversed(started):
        bg.stop()


def simulated_or_forwarded(
    start_lanes: Callable[..., BackgroundLanes], how: str, dialect: str, sim: SimSettings = FAST
) -> tuple[str, Journal, str]:
    """``(base_url, journal, lane_name)`` of a lane on the simulator (``how="simulator"``), or of
    a lane forwarding over a real socket to one (``"forwarded"``: a real upstream's path)."""
    origin = start_lanes(Profile(name="origin", lanes={"origin": LaneSpec("origin", dialect, simulator=sim)}))
    if how == "simulator":
        return origin.urls["origin"], origin.journal, "origin"
    front = start_lanes(
        Profile(name="front", lanes={"front": LaneSpec("front", dialect, upstream=origin.urls["origin"])})
    )
    return front.urls["front"], front.journal, "front"
