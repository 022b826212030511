"""Statistics and machine facts every benchmark table prints: percentiles, medians with their
spread over rounds, the load average and the CPU count."""

from __future__ import annotations

import math
import os
import statistics


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank on the sorted values); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def median(values: list[float]) -> float:
    """The median (the mean of the middle two for an even count); NaN for no values."""
    return statistics.median(values) if values else float("nan")


def finite(values: list[float]) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]


def spread(values: list[float], scale: float = 1.0, fmt: str = "{:.2f}", unit: str = "") -> str:
    """``median (min–max)`` of per-round values, scaled: one round prints its value alone."""
    vs = finite(values)
    if not vs:
        return "-"
    med = fmt.format(median(vs) * scale) + unit
    if len(vs) == 1:
        return med
    return f"{med} ({fmt.format(min(vs) * scale)}–{fmt.format(max(vs) * scale)})"


def ratio(a: float, b: float) -> str:
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b <= 0 or a < 0:
        return "n/a"  # a negative "added" figure is noise around zero: no ratio to speak of
    return f"{a / b:.2f}x"


def loadavg() -> str:
    """``/proc/loadavg``'s three averages (1, 5, 15 min), or ``?`` where it cannot be read."""
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def machine() -> str:
    return f"{os.cpu_count()} CPUs, loadavg {loadavg()}"
