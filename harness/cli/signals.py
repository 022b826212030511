"""SIGINT, SIGTERM and SIGHUP as a request to stop a drill cleanly, not as an instant death.

A drill that dies on SIGTERM (what CI cancellation and ``timeout`` send) loses the attempts still
open, its verdict and its report, and leaves the agent running. Inside :class:`StopSignals` the
first signal only sets :attr:`StopSignals.stop`: the drill ends the agent's process group, journals
open attempts as outcome unknown, writes checks.json, report.html and the summary (marked
interrupted), and exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM). A second signal
sets :attr:`StopSignals.hurry` (no grace for the agent: SIGKILL now); a third leaves at once, with
the journal as written so far (every line is flushed as it is written).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

__all__ = ["StopSignals"]

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignals:
    """Catch the stop signals for the length of a ``with`` block (main thread only)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.hurry = threading.Event()
        self.signum: int | None = None
        self._count = 0
        self._previous: dict[int, Any] = {}

    @property
    def name(self) -> str | None:
        """The first signal's name (``SIGTERM``), or None when none came."""
        return None if self.signum is None else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int | None:
        """128 + the first signal's number, the shell's convention for "ended by that signal"."""
        return None if self.signum is None else 128 + self.signum

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._count += 1
        if self._count == 1:
            self.signum = signum
            self.stop.set()
        elif self._count == 2:
            self.hurry.set()
            print("routechaos: stopping the agent now (once more to leave at once)", file=sys.stderr, flush=True)
        else:
            print("routechaos: leaving at once; the journal is kept as written so far", file=sys.stderr, flush=True)
            os._exit(128 + (self.signum or signum))

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                if signal.getsignal(sig) is signal.SIG_IGN:
                    continue  # ignored on purpose (nohup, a background job): stays ignored
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, handler)
        self._previous.clear()
