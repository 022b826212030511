"""The live view in a real terminal: a 40-call drill in an 80x24 tmux pane stays on one screen.

The pane is captured while the drill runs: the header printed before the agent starts must stay
on the pane's first line (nothing scrolled it away), the status region must appear exactly once
(redrawn in place, not appended) and no line may wrap at 80 columns. Skipped without tmux.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="no tmux (apt-get install tmux)")
ROOT = Path(__file__).resolve().parents[2]


def _tmux(sock: str, *args: str) -> str:
    assert TMUX is not None
    return subprocess.run([TMUX, "-L", sock, *args], capture_output=True, text=True, timeout=20).stdout


def test_a_40_call_drill_stays_on_one_80_column_screen(tmp_path):
    sock = f"routechaos-test-{os.getpid()}"
    out = tmp_path / "run"
    done = tmp_path / "done"
    routechaos = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]
    agent = [sys.executable, "-m", "examples.agents.run", "--agent", "router", "--calls", "40", "--interval", "1.5"]
    drill = [
        *routechaos,
        "drill",
        "ultraspeed-capacity-loss",
        "--time-scale",
        "0.05",
        "--expect-calls",
        "40",
        "--out",
        str(out),
        "--",
        *agent,
    ]
    script = tmp_path / "run.sh"
    script.write_text(
        f"cd {ROOT}\nexport PYTHONPATH={ROOT}\n" + " ".join(f"'{a}'" for a in drill) + f"\necho $? > {done}\nsleep 60\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    subprocess.run(
        [TMUX, "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24", "bash", str(script)],
        check=True,
        env={**env, "TERM": "xterm-256color"},
        timeout=20,
    )
    frames: list[tuple[list[str], list[str]]] = []
    try:
        deadline = time.monotonic() + 240
        while not done.exists() and time.monotonic() < deadline:
            plain = _tmux(sock, "capture-pane", "-p").splitlines()
            joined = _tmux(sock, "capture-pane", "-p", "-J").splitlines()  # wrapped lines joined again
            if any("profile time" in line for line in plain) and not any(ln.startswith("verdict:") for ln in plain):
                frames.append((plain, joined))
            time.sleep(0.2)
        assert done.exists(), "the drill did not finish"
    finally:
        _tmux(sock, "kill-server")
    # the verdict is not what this test is about (a latency budget may fail on a loaded machine)
    assert done.read_text().strip() in ("0", "1")
    assert frames, "the live view never showed"
    saw_progress = False
    for plain, joined in frames:
        assert plain[0].startswith("drill ultraspeed-capacity-loss"), plain  # the screen did not scroll
        region = [ln for ln in joined if ln.startswith(("t ", "calls ", "  ultraspeed", "  stable", "open:", "last"))]
        assert sum(ln.startswith("calls ") for ln in region) == 1, plain  # redrawn in place, not appended
        assert all(len(ln) <= 80 for ln in region), region  # nothing wrapped
        assert len([ln for ln in plain if ln.strip()]) <= 24
        saw_progress |= any(ln.startswith("calls ") and "/40 done" in ln for ln in region)
    assert saw_progress
