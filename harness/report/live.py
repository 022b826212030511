"""The live view of a running drill: one status region redrawn in place on a terminal, short
appended lines elsewhere (CI logs), nothing with ``--quiet``.

It reads only the drill's journal (attempts, calls, marks) and its profile (lanes, the fault
schedule), so it can watch any drill; a :class:`LiveView` is a context manager that runs beside
the workload on its own thread, so the command that drives the drill needs one ``with`` line::

    with LiveView(console, drill.journal, drill.profile, expected_calls=40):
        wait_for_the_agent()

On a terminal the region stays within the console's width and a fixed number of lines (at 80
columns a drill with two lanes takes 7), so it never scrolls the screen however long the drill.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..journal import Journal
from ..schedule import parse_schedule

__all__ = ["LiveView", "Status", "log_tail", "render_lines", "render_plain", "schedule_end", "snapshot"]

MAX_LANES, MAX_WINDOWS = 6, 2


def schedule_end(profile: Any) -> float | None:
    """When the profile's last timed fault or toxic window closes (profile seconds): ``0.0`` when
    nothing in it is timed, ``None`` when something repeats with no end (flapping)."""
    end = 0.0
    for spec in [*getattr(profile, "faults", []), *getattr(profile, "toxics", [])]:
        try:
            s = parse_schedule(spec.schedule)
        except (ValueError, TypeError):
            continue
        if s.window is not None:
            end = max(end, float(s.window[1]))
        elif s.every is not None:
            return None
    return end


@dataclass
class LaneStatus:
    name: str
    attempts: int = 0
    ok: int = 0
    error: int = 0
    unknown: int = 0
    faulted: int = 0


@dataclass
class Status:
    """What the view shows at one moment (times in profile seconds)."""

    profile: str
    t: float
    schedule_end: float | None
    calls: int
    calls_failed: int
    expected_calls: int | None
    lanes: list[LaneStatus]
    open_windows: list[tuple[str, float]] = field(default_factory=list)  # (label, since)
    last_error: str | None = None


def snapshot(journal: Journal, profile: Any, *, expected_calls: int | None = None, end: float | None = 0.0) -> Status:
    """The drill's state now, from its journal: cheap enough to take a few times a second."""
    scale = float(getattr(profile, "time_scale", 1.0) or 1.0)
    lanes = {n: LaneStatus(n) for n in getattr(profile, "lanes", {})}
    counts, last = journal.tally()  # kept as attempts are recorded: a long drill's view reads none of them
    for name, (n, ok, error, unknown, faulted) in counts.items():
        ls = lanes.setdefault(name, LaneStatus(name))
        ls.attempts, ls.ok, ls.error, ls.unknown, ls.faulted = n, ok, error, unknown, faulted
    calls = journal.calls()
    failed = sum(1 for c in calls if c.outcome != "ok" or c.complete is False)
    opened: dict[str, float] = {}
    for m in journal.marks():
        label = str(m.detail.get("fault") or m.detail.get("toxic") or "lane down") + (f" on {m.lane}" if m.lane else "")
        if m.kind in ("fault_window_open", "toxic_window_open", "lane_down"):
            opened.setdefault(label, m.t / scale)
        elif m.kind in ("fault_window_close", "toxic_window_close", "lane_up"):
            opened.pop(label, None)
    err = None
    if last is not None:
        what = " ".join(str(x) for x in (last.status, last.end_reason, last.fault_name) if x)
        err = f"{last.id} {last.lane} {what} at {(last.t_end or last.t_start) / scale:.1f}s"
    return Status(
        profile=str(getattr(profile, "name", "")),
        t=journal.now() / scale,
        schedule_end=end,
        calls=len(calls),
        calls_failed=failed,
        expected_calls=expected_calls,
        lanes=list(lanes.values()),
        open_windows=sorted(opened.items(), key=lambda kv: kv[1]),
        last_error=err,
    )


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(1, width - 1)] + "…"


def _time_line(s: Status) -> str:
    line = f"t {s.t:7.1f}s profile time"
    if s.schedule_end is None:
        line += " · faults repeat to the end"
    elif s.schedule_end > 0:
        left = s.schedule_end - s.t
        line += f" · fault schedule ends {s.schedule_end:g}s" + (f" ({left:.1f}s left)" if left > 0 else " (over)")
    return line


def _calls_line(s: Status) -> str:
    done = f"{s.calls}/{s.expected_calls}" if s.expected_calls else str(s.calls)
    return f"calls {done} done · {s.calls_failed} failed or truncated"


def render_lines(s: Status, width: int = 80) -> list[str]:
    """The status region: a bounded number of lines, none wider than ``width``."""
    lines = [_time_line(s), _calls_line(s)]
    name_w = max([6, *(len(ls.name) for ls in s.lanes[:MAX_LANES])])
    name_w = min(name_w, 16)
    for ls in s.lanes[:MAX_LANES]:
        lines.append(
            f"  {ls.name[:name_w]:<{name_w}} {ls.attempts:5} attempts {ls.ok:5} ok {ls.error:4} error "
            f"{ls.unknown:4} unknown {ls.faulted:4} faulted"
        )
    if len(s.lanes) > MAX_LANES:
        rest = s.lanes[MAX_LANES:]
        lines.append(f"  … {len(rest)} more lanes: {sum(ls.attempts for ls in rest)} attempts")
    if s.open_windows:
        shown = ", ".join(f"{label} since {since:.1f}s" for label, since in s.open_windows[:MAX_WINDOWS])
        more = f" (+{len(s.open_windows) - MAX_WINDOWS} more)" if len(s.open_windows) > MAX_WINDOWS else ""
        lines.append(f"open: {shown}{more}")
    else:
        lines.append("open: no fault window")
    lines.append(f"last error: {s.last_error}" if s.last_error else "last error: none")
    return [_clip(x, width) for x in lines]


def render_plain(s: Status) -> str:
    """One line for a log that is not a terminal."""
    lanes = " ".join(f"{ls.name} {ls.attempts}({ls.error + ls.unknown} not ok)" for ls in s.lanes)
    done = f"{s.calls}/{s.expected_calls}" if s.expected_calls else str(s.calls)
    opened = ", ".join(label for label, _ in s.open_windows) or "none"
    return f"t={s.t:.1f}s calls {done} ({s.calls_failed} failed) | {lanes} | open: {opened}"


class LiveView:
    """Shows a drill's progress while it runs (see the module docstring)."""

    def __init__(
        self,
        console: Console,
        journal: Journal,
        profile: Any,
        *,
        expected_calls: int | None = None,
        quiet: bool = False,
        every: float = 1.0,
    ) -> None:
        self.console = console
        self.journal = journal
        self.profile = profile
        self.expected_calls = expected_calls
        self.quiet = quiet
        self.every = every
        self._end = schedule_end(profile)
        self._live: Live | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def status(self) -> Status:
        return snapshot(self.journal, self.profile, expected_calls=self.expected_calls, end=self._end)

    def _renderable(self) -> Text:
        width = max(40, self.console.width)
        return Text("\n".join(render_lines(self.status(), width)), no_wrap=True, overflow="ellipsis")

    def _plain_loop(self) -> None:
        last = ""
        while not self._stop.wait(self.every):
            line = render_plain(self.status())
            if line.split(" calls ", 1)[1] != last:  # a new line only when something changed
                self.console.print(line, highlight=False, markup=False, soft_wrap=True)
                last = line.split(" calls ", 1)[1]

    def __enter__(self) -> LiveView:
        if self.quiet:
            return self
        if self.console.is_terminal:
            self._live = Live(
                get_renderable=self._renderable,
                console=self.console,
                refresh_per_second=4,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        else:
            self._thread = threading.Thread(target=self._plain_loop, name="routechaos-live", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
            if not self.quiet:
                self.console.print(render_plain(self.status()), highlight=False, markup=False, soft_wrap=True)


def log_tail(path: str | Path, lines: int = 20, max_bytes: int = 16384) -> list[str]:
    """The last ``lines`` lines of a log (an agent's output), read from its end."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line read is likely cut
    return text[-lines:]
