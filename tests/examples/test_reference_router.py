"""The reference router passes every shipped profile (no FAIL verdict; UNKNOWN is allowed: a
check whose situation never arose in a short drill has nothing to judge)."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.workload import drive, profile_horizon, router_for
from harness.checks import Verdict
from harness.drill import Drill
from harness.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILES = [p for p in sorted((ROOT / "fault_profiles").glob("*.yaml")) if load_profile(p).faults]
CALLS = 20  # p95 over 20 calls tolerates one scheduling hiccup of the test machine
REAL_SECONDS = 2.0  # target wall time of one drill


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_reference_router_is_graceful(path: Path) -> None:
    profile = load_profile(path)
    horizon = profile_horizon(profile)
    # compress each profile so its whole story (fault windows, recovery) fits in ~2 s
    time_scale = min(0.05, REAL_SECONDS / horizon)
    with Drill(profile, time_scale=time_scale) as drill:
        router = router_for(drill)
        results = drive(drill, router, CALLS, horizon)
        report = drill.evaluate()
    assert len(results) == CALLS
    failed = [r for r in report.results if r.verdict is Verdict.FAIL]
    assert not failed, report.render()


def test_every_shipped_profile_is_covered() -> None:
    assert len(PROFILES) >= 30
    assert any(p.stem == "ultraspeed-capacity-loss" for p in PROFILES)
