"""The harness watching itself: how late its own event loop ran.

Every duration a check judges was measured by the lanes' event loop. When the machine is too
loaded for the drill (CPU starved, the process descheduled, a garbage collection), that loop
wakes late, and a compressed drill multiplies the delay by ``1 / time_scale`` in profile time: a
correct agent could fail a latency budget because of the harness, not itself. So the loop
measures how late it wakes, and the journal keeps every episode of lag (a ``harness_lag`` mark
with the real seconds lost); a timing verdict that only the harness's own lag could explain is
UNKNOWN, never FAIL (:func:`harness.checks.judge.drill_facts`).

The watch wakes every 20 ms: about 50 cheap wake-ups a second, nothing on the per-event path.
"""

from __future__ import annotations

import asyncio
import contextlib

from .journal import Journal

__all__ = ["INTERVAL", "THRESHOLD", "watch_lag"]

#: how often the loop checks itself, and how late it must wake to count as lag (real seconds)
INTERVAL = 0.02
THRESHOLD = 0.025


async def watch_lag(journal: Journal, *, interval: float = INTERVAL, threshold: float = THRESHOLD) -> None:
    """Run until cancelled: each run of late wake-ups becomes one ``harness_lag`` mark at the time
    it began, with ``lag`` (real seconds lost in all), ``worst`` and ``span`` (real seconds from its
    start to its end)."""
    loop = asyncio.get_running_loop()
    start: float | None = None
    lost = worst = 0.0
    try:
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            late = loop.time() - before - interval
            if late > threshold:
                if start is None:
                    start = journal.now() - late
                lost += late
                worst = max(worst, late)
            elif start is not None:
                _mark(journal, start, lost, worst)
                start, lost, worst = None, 0.0, 0.0
    finally:
        if start is not None:
            with contextlib.suppress(Exception):
                _mark(journal, start, lost, worst)


def _mark(journal: Journal, start: float, lost: float, worst: float) -> None:
    span = round(journal.now() - start, 4)
    journal.mark("harness_lag", t=max(0.0, start), lag=round(lost, 4), worst=round(worst, 4), span=span)
