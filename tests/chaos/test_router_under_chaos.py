"""The chaos suite, as README's CI recipe runs it: the reference router through shipped profiles.

Run on its own with profile time compressed, journals and reports kept::

    pytest tests/chaos --routechaos-time-scale 0.05 --routechaos-journal-dir chaos-journals \\
        --routechaos-report-dir chaos-reports

It is left out of the plain ``pytest`` run (``norecursedirs``): without ``--routechaos-time-scale``
these drills would take their profiles' real minutes.
"""

from __future__ import annotations

import pytest

from examples.workload import drive, profile_horizon, router_for


@pytest.mark.chaos_profile("ultraspeed-capacity-loss")
def test_router_survives_the_premium_lane_vanishing(chaos):
    drive(chaos, router_for(chaos), 30, profile_horizon(chaos.profile))
    report = chaos.assert_graceful()
    assert {r.name for r in report.results} >= {"fallback_within", "recovers_within", "no_truncated_success"}


@pytest.mark.chaos_profile("f16-stream-cut")
def test_router_never_passes_off_a_cut_stream(chaos):
    drive(chaos, router_for(chaos), 20, profile_horizon(chaos.profile))
    chaos.assert_graceful()
