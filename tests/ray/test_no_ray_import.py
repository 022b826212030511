"""Ray is an optional extra: importing the harness and running a plain drill never imports it.

Runs whether or not ray is installed (a machine with the extra is where the promise can break).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_import_and_plain_drill_never_import_ray() -> None:
    code = textwrap.dedent(
        """
        import sys
        import harness, harness.drill, harness.cli, harness.faults.plan, harness.lanes
        from harness.cli import drill as _cli_drill
        import httpx
        from harness.drill import Drill
        with Drill("f01-rate-limit-retry-after", time_scale=0.05) as drill:
            url = drill.base_url(next(iter(drill.profile.lanes)))
        loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
        print("RAY:", loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "RAY: []" in out.stdout, out.stdout
