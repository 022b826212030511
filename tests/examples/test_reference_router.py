"""The reference router passes every shipped profile, and its verdicts are the same whether it
sends ``x-routechaos-call-id`` or not: the header is an optimisation, never a requirement.

Each profile is driven with the traffic it asks for (its ``workload:``), compressed so its whole
story (fault windows, recovery) fits in about two seconds. Without the header (the agent as it
is), every check must PASS: a correct agent can pass every shipped profile. With the header, every
check must give the same verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from examples.workload import drive_profile, profile_horizon, router_for
from harness.checks import Verdict
from harness.drill import Drill
from harness.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILES = [p for p in sorted((ROOT / "fault_profiles").glob("*.yaml")) if load_profile(p).faults]
REAL_SECONDS = 2.5  # target wall time of one drill
#: at most 10x faster than real time: an agent's own real-time cost per call (~20 ms for an SDK
#: call on this machine) is multiplied by 1 / time_scale in profile time, and must stay small
#: against the profiles' latency budgets
MAX_SPEEDUP = 0.1


LAGGED = "the harness itself ran"


def _verdict(r: Any) -> Verdict | None:
    """A check's verdict, or None when it does not decide the drill (``severity: warn``) or is
    UNKNOWN only because the harness itself ran late (a loaded machine; see harness/lag.py): that
    says nothing about the agent either way."""
    if not r.decides:
        return None
    if r.verdict is Verdict.UNKNOWN and any(LAGGED in e.what for e in r.problems()):
        return None
    return r.verdict


def drill_router(path: Path, *, header: bool) -> tuple[dict[str, Verdict | None], str]:
    profile = load_profile(path)
    # compress each profile so its whole story (fault windows, recovery) fits in a few seconds
    span = max(profile_horizon(profile), profile.workload.spread(profile))
    time_scale = min(MAX_SPEEDUP, max(0.05, REAL_SECONDS / span))
    with Drill(profile, time_scale=time_scale) as drill:
        results = drive_profile(drill, router_for(drill), **({} if header else {"headers": {}}))
        report = drill.evaluate()
    assert len(results) == profile.workload.calls
    return {r.name: _verdict(r) for r in report.results}, report.render()


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_reference_router_passes_and_the_header_changes_no_verdict(path: Path) -> None:
    bare, shown = drill_router(path, header=False)
    assert all(v in (Verdict.PASS, None) for v in bare.values()), shown
    tagged, shown_tagged = drill_router(path, header=True)
    same = [k for k in bare if bare[k] is not None and tagged.get(k) is not None]
    assert {k: tagged[k] for k in same} == {k: bare[k] for k in same}, shown_tagged


def test_every_shipped_profile_is_covered() -> None:
    assert len(PROFILES) >= 30
    assert any(p.stem == "ultraspeed-capacity-loss" for p in PROFILES)
