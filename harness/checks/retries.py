"""Checks on retry discipline: how many, how soon, how spread out, and when not at all."""

from __future__ import annotations

import dataclasses
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from ..journal import Attempt, Journal
from ._calls import attribution_of, call_views, doubt, end_time, ids, is_failure, permanent_reason
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


def sdk_runs(attempts: list[Attempt]) -> list[list[Attempt]]:
    """Split one lane's attempts for one call into SDK retry loops: a new loop starts whenever the
    SDK's ``x-stainless-retry-count`` goes back to 0 (or does not increase). Attempts without the
    header each count as their own loop."""
    runs: list[list[Attempt]] = []
    for a in attempts:
        prev = runs[-1][-1] if runs else None
        if (
            prev is not None
            and a.retry_count is not None
            and prev.retry_count is not None
            and a.retry_count > prev.retry_count
        ):
            runs[-1].append(a)
        else:
            runs.append([a])
    return runs


@register("retries_bounded")
@dataclass(frozen=True)
class RetriesBounded(Check):
    """Retries are bounded: per call, per lane per call, in total, and in retry layers.

    Catches retry amplification, the classic way a client turns a provider brown-out into an
    outage: an application loop that retries a Stainless SDK which itself retries (3 × 3 = 9
    attempts), or a router that retries every lane N times. Layers are detected from the SDK's
    ``x-stainless-retry-count`` header: on one lane for one call, each time it goes back to 0 a
    new SDK retry loop was started by a layer above. ``max_amplification`` bounds the number of
    such loops; the layers seen are reported either way.
    """

    max_attempts_per_call: int | None = 3
    max_attempts_per_lane_per_call: int | None = None
    max_total: int | None = None
    max_amplification: int | None = None

    def validate(self) -> None:
        self._positive("max_attempts_per_call", "max_attempts_per_lane_per_call", "max_total", "max_amplification")

    def evaluate(self, journal: Journal) -> CheckResult:
        views = [v for v in call_views(journal) if v.attempts]
        if not views:
            return self.result(UNKNOWN, "no attempts in the journal")
        ev: list[Evidence] = []
        worst_per_call = max(len(v.attempts) for v in views)
        worst_layers = 1
        worst_amp = 1
        by_key = {v.key: v for v in views}
        for v in views:
            n = len(v.attempts)
            if self.max_attempts_per_call is not None and n > self.max_attempts_per_call:
                e = Evidence(
                    f"{n} attempts for one call (lanes: {', '.join(v.lanes())})",
                    FAIL,
                    v.key,
                    v.attempt_ids,
                    None,
                    v.attempts[-1].t_start,
                    n,
                    self.max_attempts_per_call,
                )
                group = [by_key[k] for k in (v.key, *v.ambiguous_with) if k in by_key]
                total = sum(len(g.attempts) for g in group)
                if v.ambiguous_with and total > len(group) * self.max_attempts_per_call:
                    e = dataclasses.replace(
                        e,
                        what=f"{total} attempts for {len(group)} calls with the same conversation at once: "
                        f"at least one made more than {self.max_attempts_per_call}",
                    )
                ev.append(doubt(e, v) if total <= len(group) * self.max_attempts_per_call else e)
            for lane in v.lanes():
                on = v.on(lane)
                if self.max_attempts_per_lane_per_call is not None and len(on) > self.max_attempts_per_lane_per_call:
                    ev.append(
                        doubt(
                            Evidence(
                                f"{len(on)} attempts on {lane} for one call",
                                FAIL,
                                v.key,
                                ids(on),
                                lane,
                                on[-1].t_start,
                                len(on),
                                self.max_attempts_per_lane_per_call,
                            ),
                            v,
                        )
                    )
                if not any(a.retry_count is not None for a in on):
                    continue
                runs = sdk_runs(on)
                longest = max(len(r) for r in runs)
                layers = 2 if len(runs) > 1 and longest > 1 else 1
                worst_layers = max(worst_layers, layers)
                worst_amp = max(worst_amp, len(runs))
                if self.max_amplification is not None and len(runs) > self.max_amplification:
                    e = Evidence(
                        f"SDK retry loop restarted {len(runs)} times on {lane} "
                        f"(loops of {', '.join(str(len(r)) for r in runs)} attempts: {layers} retry layers)",
                        FAIL,
                        v.key,
                        ids(on),
                        lane,
                        on[-1].t_start,
                        len(runs),
                        self.max_amplification,
                    )
                    ev.append(doubt(e, v))
        total = sum(len(v.attempts) for v in views)
        if self.max_total is not None and total > self.max_total:
            all_ids = tuple(a.id for v in views for a in v.attempts)
            ev.append(Evidence(f"{total} attempts in total", FAIL, None, all_ids, None, None, total, self.max_total))
        summary = (
            f"{total} attempts for {len(views)} calls, at most {worst_per_call} per call; "
            f"retry layers seen: {worst_layers} (SDK loops per lane per call: up to {worst_amp})"
        )
        return self.judge(ev, summary)


#: how long after a lane answered a request of another call may still have been sent before the
#: answer could be read (real seconds): in flight, not a retry that ignored the answer
IN_FLIGHT = 0.05
#: the clock noise between an agent's sleep and the lane's timestamps (real seconds)
CLOCK_NOISE = 0.001


def _keys(journal: Journal) -> dict[str, str]:
    """Attempt id -> the key of the call that made it (header, or inferred: ``harness.attribution``)."""
    of = attribution_of(journal).call_of
    return {a.id: of.get(a.id) or a.call_id or a.fingerprint or a.id for a in journal.attempts()}


@register("honors_retry_after")
@dataclass(frozen=True)
class HonorsRetryAfter(Check):
    """No attempt reaches a lane before the delay that lane asked for (``Retry-After``).

    Catches clients that ignore or cap the server's delay (F01, F09: e.g. anthropic-sdk replaces
    ``retry-after: 90`` with a 0.5-8 s backoff) and so get throttled harder or banned. For every
    attempt that asked for a delay, the next attempt to the same lane (of the same call with
    ``scope: call``, of any call with ``scope: lane``) must start at least ``tolerance ×
    retry_after`` after it ended. Only attempts *sent after* the answer count: another call's
    request that reached the lane within moments of the answer was already in flight. Actual gap
    vs requested is reported for each. ``UNKNOWN`` if no lane asked for a delay, or nobody came
    back to judge.
    """

    timed = True

    tolerance: float = 0.9
    scope: Literal["call", "lane"] = "call"

    def validate(self) -> None:
        self._positive("tolerance")

    def evaluate(self, journal: Journal) -> CheckResult:
        everything = journal.attempts()
        asked = [a for a in everything if a.retry_after is not None and a.retry_after > 0]
        if not asked:
            return self.result(UNKNOWN, "no attempt carried a Retry-After")
        key = _keys(journal)
        views = {v.key: v for v in call_views(journal)}
        grace = IN_FLIGHT * getattr(journal, "scale", 1.0)
        by_lane: dict[str, list[Attempt]] = defaultdict(list)
        for b in everything:
            by_lane[b.lane].append(b)
        starts = {k: [b.t_start for b in v] for k, v in by_lane.items()}
        ev: list[Evidence] = []
        for a in asked:
            assert a.retry_after is not None
            t_ans = end_time(a)
            mine = key[a.id]
            nxt = None
            for b in by_lane[a.lane][bisect_left(starts[a.lane], t_ans) :]:
                same = key[b.id] == mine
                if b is a or (self.scope == "call" and not same) or (not same and b.t_start < t_ans + grace):
                    continue
                nxt = b
                break
            if nxt is None:
                # honoured if traffic went on elsewhere past the delay (the agent could have come back)
                went_on = any(b.t_start >= t_ans + self.tolerance * a.retry_after for b in everything)
                what = f"asked {a.retry_after:g}s; no later attempt to {a.lane}" + (
                    " while traffic went on elsewhere" if went_on else " before the drill ended"
                )
                measured = self.tolerance * a.retry_after if went_on else None
                ev.append(Evidence(what, PASS, mine, (a.id,), a.lane, t_ans, measured, a.retry_after))
                continue
            b = nxt
            gap = b.t_start - t_ans
            need = self.tolerance * a.retry_after
            ok = gap >= need
            ev.append(
                doubt(
                    Evidence(
                        f"asked {a.retry_after:g}s, next attempt {b.id} came after {gap:.3f}s"
                        + ("" if ok else f" (< {need:.3f}s)"),
                        PASS if ok else FAIL,
                        key[b.id],
                        (a.id, b.id),
                        a.lane,
                        b.t_start,
                        gap,
                        need,
                    ),
                    views.get(key[b.id]) if key[b.id] == mine else None,
                )
            )
        judged = [e for e in ev if e.measured is not None]
        bad = sum(e.verdict is FAIL for e in ev)
        if not judged:
            return self.result(UNKNOWN, f"{len(asked)} Retry-After(s) asked, no later attempt to judge", ev)
        return self.judge(ev, f"{len(judged)} retries after a Retry-After, {bad} too early")


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
        key = _keys(journal)
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


@register("no_retry_on_permanent")
@dataclass(frozen=True)
class NoRetryOnPermanent(Check):
    """No same-lane retry after a permanent error.

    Catches blind retry of errors that cannot succeed on that lane: context length or content
    filter (400), revoked key (401), forbidden (403), model gone (404), exhausted quota or spend
    limit (429 ``insufficient_quota``, 402). Stainless SDKs *do* retry a quota 429 twice (F03): the
    harness reports it. The right reaction is fallback or a clean error. ``auth_refresh_retries``
    allows that many retries after a 401 (anthropic-sdk retries once after a token refresh).
    ``UNKNOWN`` when no permanent error was seen.
    """

    auth_refresh_retries: int = 0

    def validate(self) -> None:
        self._positive("auth_refresh_retries", allow_zero=True)

    def evaluate(self, journal: Journal) -> CheckResult:
        ev: list[Evidence] = []
        for v in call_views(journal):
            for lane in v.lanes():
                on = v.on(lane)
                for i, a in enumerate(on):
                    why = permanent_reason(a)
                    if why is None:
                        continue
                    after = on[i + 1 :]
                    allowed = self.auth_refresh_retries if a.status == 401 else 0
                    if len(after) > allowed:
                        ev.append(
                            Evidence(
                                f"{len(after)} more attempts on {lane} after {why}",
                                FAIL,
                                v.key,
                                ids([a, *after]),
                                lane,
                                after[0].t_start,
                                len(after),
                                allowed,
                            )
                        )
                    else:
                        ev.append(Evidence(f"no retry on {lane} after {why}", PASS, v.key, (a.id,), lane, a.t_end))
                    break
        if not ev:
            return self.result(UNKNOWN, "no permanent error seen")
        bad = sum(e.verdict is FAIL for e in ev)
        return self.judge(ev, f"{len(ev)} permanent errors, {bad} retried on the same lane")
