"""Fixtures of the fault tests."""

from __future__ import annotations

from typing import Any

import pytest

from harness.lanes import BackgroundLanes
from tests.faults.tool_drive import start, stop


@pytest.fixture(params=["simulator", "forwarded"])
def tool_lane(request: Any) -> Any:
    """``tool_lane(surface, fault)``: lanes started by ``tool_drive.start``, on the simulator and forwarding."""
    started: list[BackgroundLanes] = []

    def make(surface: str, fault: dict[str, Any] | None) -> BackgroundLanes:
        bg = start(surface, fault, forwarded=request.param == "forwarded")
        started.append(bg)
        return bg

    yield make
    for bg in started:
        stop(bg)
