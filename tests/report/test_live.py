"""The live view: bounded, in place on a terminal, a line per change in a log, silent when quiet."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from harness.clock import VirtualClock
from harness.journal import Journal
from harness.report.live import LiveView, log_tail, render_lines, render_plain, schedule_end, snapshot
from tests.checks.builder import JB


@dataclass
class Spec:
    schedule: Any


@dataclass
class P:
    name: str = "p"
    time_scale: float = 0.5
    lanes: dict[str, Any] = field(default_factory=lambda: {"fast": None, "stable": None, "spare": None})
    faults: list[Any] = field(default_factory=list)
    toxics: list[Any] = field(default_factory=list)


def test_snapshot_counts_attempts_per_lane_calls_and_open_windows():
    jb = JB()  # journal times are real drill seconds; the view shows profile seconds (time scale 0.5)
    jb.ok("fast", 0.0, 0.5, call="c1")
    jb.call("c1", 0.0, 0.6)
    jb.cut("fast", 1.0, 1.4, call="c2")
    jb.call("c2", 1.0, 1.5, complete=False)
    jb.mark("fault_window_open", 2.0, "fast", fault="overloaded")
    jb.err("fast", 2.1, 2.2, call="c3", fault="overloaded")
    jb.clock.set(3.0)
    s = snapshot(jb.j, P(), expected_calls=40, end=20.0)
    assert s.t == 6.0
    assert (s.calls, s.calls_failed, s.expected_calls) == (2, 1, 40)
    lanes = {ls.name: ls for ls in s.lanes}
    assert list(lanes) == ["fast", "stable", "spare"]  # every lane of the profile, tried or not
    fast = lanes["fast"]
    assert (fast.attempts, fast.ok, fast.error, fast.unknown, fast.faulted) == (3, 1, 1, 1, 2)
    assert lanes["spare"].attempts == 0
    assert s.open_windows == [("overloaded on fast", 4.0)]
    assert s.last_error is not None and s.last_error.startswith("a000003 fast 503")
    lines = render_lines(s, 80)
    assert lines[0].startswith("t     6.0s profile time · fault schedule ends 20s (14.0s left)")
    assert lines[1] == "calls 2/40 done · 1 failed or truncated"
    assert "open: overloaded on fast since 4.0s" in lines
    jb.mark("fault_window_close", 4.0, "fast", fault="overloaded")
    assert snapshot(jb.j, P()).open_windows == []


def test_the_region_stays_within_80_columns_and_a_bounded_height_whatever_the_drill():
    jb = JB()
    names = [f"lane-with-a-very-long-name-{i}" for i in range(9)]
    for i, n in enumerate(names):
        for k in range(3):
            jb.err(n, i + k * 0.1, i + k * 0.1 + 0.05, call=f"c{i}{k}", fault="x" * 90)
            jb.mark("fault_window_open", i + k * 0.1 + 0.01, n, fault="a-fault-with-a-long-name-" * 3)
    for i in range(5000):
        jb.call(f"c{i}", 0.0, 0.1, outcome="error")
    s = snapshot(jb.j, P(lanes={n: None for n in names}), expected_calls=123456)
    for width in (40, 80, 120):
        lines = render_lines(s, width)
        assert all(len(line) <= width for line in lines), lines
        assert len(lines) <= 2 + 6 + 1 + 1 + 1  # time, calls, 6 lanes, "more lanes", open, last error
    assert any("more lanes" in line for line in render_lines(s, 80))


def test_schedule_end_is_the_last_window_none_when_flapping_forever():
    assert schedule_end(P(faults=[Spec({"window": [20, 40]}), Spec({"first": 3})])) == 40.0
    assert schedule_end(P(faults=[Spec("always")])) == 0.0
    assert schedule_end(P(faults=[Spec({"every": 10, "for": 2})])) is None
    assert schedule_end(P(faults=[Spec({"every": 10, "for": 2, "window": [0, 30]})])) == 30.0


def test_a_log_gets_a_line_when_something_changes_and_none_when_quiet():
    j = Journal(clock=VirtualClock())
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=80)
    assert not console.is_terminal
    view = LiveView(console, j, P(), expected_calls=3, every=0.01)
    with view:
        from harness.journal import Call

        j.record_call(Call(id="c1", t_start=0.0, t_end=0.1, outcome="ok"))
        deadline = time.monotonic() + 10
        while "calls 1/3" not in buf.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = buf.getvalue().splitlines()
    assert any("calls 1/3 (0 failed)" in line for line in lines)
    assert lines[-1] == render_plain(view.status())  # the last state, once more at the end
    assert len(lines) <= 4  # one per change (0 calls, 1 call) and the closing line, not one per tick
    quiet = io.StringIO()
    with LiveView(Console(file=quiet, width=80), j, P(), quiet=True, every=0.01):
        time.sleep(0.05)
    assert quiet.getvalue() == ""


def test_on_a_terminal_the_region_is_redrawn_in_place():
    j = Journal(clock=VirtualClock())
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=80, height=24)
    with LiveView(console, j, P(), every=0.25):
        time.sleep(0.1)
    out = buf.getvalue()
    assert "\x1b[" in out  # cursor movement: rich redraws the region, it does not append lines
    assert "profile time" in out


def test_log_tail_reads_the_end_of_a_long_log(tmp_path):
    log = tmp_path / "agent.log"
    log.write_text("".join(f"line {i}\n" for i in range(10000)) + "Traceback (most recent call last):\nBoom\n")
    tail = log_tail(log, lines=5)
    assert tail[-2:] == ["Traceback (most recent call last):", "Boom"]
    assert len(tail) == 5
    assert log_tail(tmp_path / "missing.log") == []
