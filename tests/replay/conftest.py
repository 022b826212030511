"""Lanes for record and replay tests: a simulator origin, a recording lane forwarding to it over
a real socket, and lanes replaying the cassette it wrote."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.journal import Journal
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import FaultSpec, LaneSpec, Profile
from harness.replayspec import ReplaySpec
from harness.simulator import SimSettings

#: a longer answer than the engine tests' (a cut at token 10 leaves most of it out), still fast
SIM = SimSettings(tokens_per_second=2000.0, ttft=0.005, answer_tokens=48)
SCALE = 0.05  # replays run at a twentieth of the recorded timing


class Rig:
    """Start lanes; everything started is stopped at the end of the test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[BackgroundLanes] = []

    def start(self, profile: Profile, journal: Journal | None = None) -> BackgroundLanes:
        bg = BackgroundLanes(LaneSet(profile, journal if journal is not None else Journal())).start()
        self.started.append(bg)
        return bg

    def recording(self, dialect: str, cassette: Path, sim: SimSettings = SIM) -> tuple[str, BackgroundLanes]:
        """``(url, lanes)`` of a lane that records to ``cassette``, forwarding to a simulator lane."""
        origin = self.start(Profile(name="origin", lanes={"origin": LaneSpec("origin", dialect, simulator=sim)}))
        spec = LaneSpec("live", dialect, upstream=origin.urls["origin"], record=str(cassette))
        live = self.start(Profile(name="live", lanes={"live": spec}))
        return live.urls["live"], live

    def replaying(
        self,
        dialect: str,
        cassette: Path,
        faults: list[FaultSpec] | None = None,
        *,
        time_scale: float = SCALE,
        **replay: Any,
    ) -> tuple[str, BackgroundLanes]:
        spec = LaneSpec("rep", dialect, replay=ReplaySpec(str(cassette), **replay))
        lanes = self.start(Profile(name="rep", lanes={"rep": spec}, faults=faults or [], time_scale=time_scale))
        return lanes.urls["rep"], lanes

    def stop(self, bg: BackgroundLanes) -> None:
        bg.stop()
        self.started.remove(bg)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    for bg in reversed(r.started):
        bg.stop()


Drive = Callable[..., Any]
