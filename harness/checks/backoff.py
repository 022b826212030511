"""Checks on how retries are spread out in time: never many at once on one lane (``no_hammering``),
and growing waits with jitter between them (``backoff``).

Apart from the other retry checks (:mod:`harness.checks.retries`) because they judge the timing
of a whole lane's attempts rather than the count and cause of one call's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

from ..journal import Attempt, Journal
from ._calls import (
    CLOCK_NOISE,
    attempt_call_keys,
    call_views,
    end_time,
    ids,
    is_failure,
)
from .base import Check, CheckResult, Evidence, Verdict, register

__all__ = ["Backoff", "NoHammering"]

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def _worst_window(atts: list[Attempt], window: float) -> list[Attempt]:
    """The largest run of ``atts`` (in start order) that starts within ``window`` seconds."""
    best: list[Attempt] = []
    j = 0
    for i, a in enumerate(atts):
        while atts[j].t_start < a.t_start - window:
            j += 1
        if i - j + 1 > len(best):
            best = atts[j : i + 1]
    return best


@register("no_hammering")
@dataclass(frozen=True)
class NoHammering(Check):
    """No call retries a failing lane faster than ``max_attempts`` attempts in ``window`` seconds.

    Catches retry storms: calls that retry a throttled or overloaded lane in a tight loop (F02,
    F05, F10, F31), which keeps it down and burns quota. Hammering is judged against the offered
    load, per call: six calls at once that each retry a few times with backoff are not a storm,
    one call that retries ten times a second is. Only failing attempts (outcome error or unknown)
    count unless ``only_failing`` is false. The worst window per lane is reported with its calls
    and the retry amplification (attempts per call in it); ``max_amplification`` bounds that too.
    ``UNKNOWN`` when no lane failed.
    """

    timed = True

    max_attempts: int = 5
    window: float = 1.0
    only_failing: bool = True
    max_amplification: float | None = None

    def validate(self) -> None:
        self._positive("max_attempts", "window", "max_amplification")

    def evaluate(self, journal: Journal) -> CheckResult:
        key = attempt_call_keys(journal)
        by_lane: dict[str, list[Attempt]] = defaultdict(list)
        for a in journal.attempts():
            if not self.only_failing or is_failure(a):
                by_lane[a.lane].append(a)
        if not by_lane:
            return self.result(UNKNOWN, "no failing attempts: nothing to judge" if self.only_failing else "no attempts")
        ev: list[Evidence] = []
        peaks = []
        for lane, atts in sorted(by_lane.items()):
            per_call: dict[str, list[Attempt]] = defaultdict(list)
            for a in atts:
                per_call[key[a.id]].append(a)
            worst_call, worst = max(
                ((k, _worst_window(v, self.window)) for k, v in per_call.items()), key=lambda kv: (len(kv[1]), kv[0])
            )
            n = len(worst)
            what = f"{n} failing attempts from one call to {lane} in {self.window:g}s"
            ev.append(
                Evidence(
                    what,
                    FAIL if n > self.max_attempts else PASS,
                    worst_call,
                    ids(worst),
                    lane,
                    worst[0].t_start,
                    n,
                    self.max_attempts,
                )
            )
            storm = _worst_window(atts, self.window)
            calls = len({key[b.id] for b in storm})
            amp = len(storm) / calls
            peaks.append(f"{lane}: {n} per call, {len(storm)} from {calls} calls")
            bad = self.max_amplification is not None and amp > self.max_amplification
            ev.append(
                Evidence(
                    f"{len(storm)} attempts to {lane} in {self.window:g}s from {calls} calls (amplification {amp:.1f})",
                    FAIL if bad else PASS,
                    None,
                    ids(storm),
                    lane,
                    storm[0].t_start,
                    amp,
                    self.max_amplification,
                )
            )
        return self.judge(ev, f"worst {self.window:g}s while failing: {', '.join(peaks)}")


def _cluster(values: list[float], width: float) -> list[int]:
    """Indexes of the largest group of ``values`` that lie within ``width`` of each other."""
    order = sorted(range(len(values)), key=values.__getitem__)
    best: list[int] = []
    j = 0
    for i in range(len(order)):
        while values[order[i]] - values[order[j]] > width:
            j += 1
        if i - j + 1 > len(best):
            best = order[j : i + 1]
    return best


@register("backoff")
@dataclass(frozen=True)
class Backoff(Check):
    """Retries back off: the waits' envelope grows, waits are not fixed, and calls do not retry
    in lockstep.

    Catches fixed-interval or zero-delay retry loops, and backoff without jitter, whose retries
    from many concurrent calls arrive together (thundering herd) and knock a recovering lane over
    again (F02, F05). A wait is the time from the end of a failed attempt to the start of the same
    call's next attempt on that lane; waits that follow a ``Retry-After`` are the server's choice
    and are left out. Jitter means a wait may be shorter than the one before it, so no single wait
    is judged:

    - **envelope**: on each lane, the longest first retry wait across calls, against the longest
      second one (each from at least ``min_samples`` calls): the second must reach ``min_growth
      × (1 - tolerance)`` of the first. A backoff that has hit its cap stops growing; one that
      never grew, or shrank, fails.
    - **fixed interval**: one call's waits (four or more), or those of two calls (three or more
      each), all within ``lockstep_window`` of one another: a constant (or zero) delay.
    - **lockstep** (``jitter``): the same retry of four or more calls on one lane all (but one in
      eight) waited within ``lockstep_window`` of each other.

    ``lockstep_window`` is in profile seconds, plus a millisecond of real clock noise. ``UNKNOWN``
    with too few retries to judge any of these.
    """

    timed = True

    min_growth: float = 1.0
    tolerance: float = 0.5
    jitter: bool = True
    lockstep_window: float = 0.005
    min_samples: int = 5

    def validate(self) -> None:
        self._positive("min_growth", "lockstep_window", "min_samples")
        self._require(0 <= self.tolerance < 1, f"parameter 'tolerance' must be in [0, 1), got {self.tolerance!r}")

    def evaluate(self, journal: Journal) -> CheckResult:
        width = self.lockstep_window + CLOCK_NOISE * getattr(journal, "scale", 1.0)
        ev: list[Evidence] = []
        # lane -> retry index -> [(wait, call key, (failed attempt, retry))]
        waits: dict[str, dict[int, list[tuple[float, str, tuple[str, str]]]]] = defaultdict(lambda: defaultdict(list))
        fixed: dict[str, list[tuple[str, list[float], tuple[str, ...]]]] = defaultdict(list)
        doubtful = directed = 0
        for v in call_views(journal):
            if v.ambiguous_with:
                doubtful += 1  # which call waited how long cannot be told
                continue
            for lane in v.lanes():
                on = v.on(lane)
                seq: list[float] = []
                for k, (a, b) in enumerate(pairwise(on), start=1):
                    if a.retry_after is not None or a.complete:
                        directed += a.retry_after is not None
                        break  # the server chose the delay, or the call had its answer
                    w = b.t_start - end_time(a)
                    seq.append(w)
                    waits[lane][k].append((w, v.key, (a.id, b.id)))
                if len(seq) >= 3 and max(seq) - min(seq) <= width:
                    fixed[lane].append((v.key, seq, ids(on[: len(seq) + 1])))
        judged = 0
        for lane in sorted(set(waits) | set(fixed)):
            judged += self._fixed(lane, fixed[lane], width, ev)
            judged += self._envelope(lane, waits[lane], ev)
            if self.jitter:
                judged += self._lockstep(lane, waits[lane], width, ev)
        left = f"; {doubtful} calls left out (the same conversation from several calls at once)" if doubtful else ""
        if not judged:
            retried = sum(len(items) for by_index in waits.values() for items in by_index.values())
            failed = [a for a in journal.attempts() if is_failure(a)]
            if failed and not retried and not doubtful and not directed:
                what = f"{len(failed)} failed attempts, none retried on the same lane: nothing to back off"
                return self.judge([Evidence(what, PASS, None, ids(failed[:20]))], what)
            return self.result(UNKNOWN, "too few retries to judge backoff" + left)
        bad = sum(e.verdict is FAIL for e in ev)
        return self.judge(ev, f"{judged} retry patterns judged, {bad} bad" + left)

    def _fixed(
        self, lane: str, calls: list[tuple[str, list[float], tuple[str, ...]]], width: float, ev: list[Evidence]
    ) -> int:
        long = [c for c in calls if len(c[1]) >= 4]
        if long:
            key, seq, att = long[0]
            ev.append(
                Evidence(
                    f"fixed interval on {lane}: {len(seq)} waits of {min(seq):.3f}-{max(seq):.3f}s",
                    FAIL,
                    key,
                    att,
                    lane,
                    None,
                    max(seq) - min(seq),
                    width,
                )
            )
            return 1
        if len(calls) >= 2:
            every = [w for _, seq, _ in calls for w in seq]
            if max(every) - min(every) <= width:
                att = tuple(i for _, _, a in calls for i in a)
                ev.append(
                    Evidence(
                        f"fixed interval on {lane}: {len(calls)} calls all waited {min(every):.3f}-{max(every):.3f}s",
                        FAIL,
                        None,
                        att,
                        lane,
                        None,
                        max(every) - min(every),
                        width,
                    )
                )
                return 1
        return 0

    def _envelope(
        self, lane: str, by_index: dict[int, list[tuple[float, str, tuple[str, str]]]], ev: list[Evidence]
    ) -> int:
        first, second = by_index.get(1, []), by_index.get(2, [])
        if len(first) < self.min_samples or len(second) < self.min_samples:
            return 0
        e1, e2 = max(w for w, _, _ in first), max(w for w, _, _ in second)
        need = self.min_growth * (1 - self.tolerance) * e1
        att = tuple(i for _, _, pair in first + second for i in pair)
        ok = e2 + 1e-9 >= need
        what = (
            f"longest first retry wait on {lane} {e1:.3f}s, longest second {e2:.3f}s "
            f"({len(first)} and {len(second)} calls)" + ("" if ok else f": the envelope shrank (< {need:.3f}s)")
        )
        ev.append(Evidence(what, PASS if ok else FAIL, None, att, lane, None, e2, need))
        return 1

    def _lockstep(
        self, lane: str, by_index: dict[int, list[tuple[float, str, tuple[str, str]]]], width: float, ev: list[Evidence]
    ) -> int:
        judged = 0
        for k, items in sorted(by_index.items()):
            calls = {key for _, key, _ in items}
            if len(calls) < 4:
                continue
            judged += 1
            ws = [w for w, _, _ in items]
            group = _cluster(ws, width)
            need = len(ws) - len(ws) // 8
            att = tuple(i for j in group for i in items[j][2])
            lo, hi = min(ws[j] for j in group), max(ws[j] for j in group)
            if len(group) >= need:
                ev.append(
                    Evidence(
                        f"no jitter: retry #{k} of {len(group)} of {len(ws)} calls on {lane} all waited "
                        f"{lo:.3f}-{hi:.3f}s",
                        FAIL,
                        None,
                        att,
                        lane,
                        None,
                        hi - lo,
                        width,
                    )
                )
            else:
                ev.append(
                    Evidence(
                        f"retry #{k} of {len(ws)} calls on {lane}: at most {len(group)} waited within "
                        f"{width:.3f}s of each other",
                        PASS,
                        None,
                        att,
                        lane,
                        None,
                        float(len(group)),
                        float(need),
                    )
                )
        return judged
