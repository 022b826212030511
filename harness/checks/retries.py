"""Checks on retry discipline: how many, how soon, how spread out, and when not at all."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from ..journal import Attempt, Journal
from ._calls import call_views, end_time, ids, is_failure, permanent_reason
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
        for v in views:
            n = len(v.attempts)
            if self.max_attempts_per_call is not None and n > self.max_attempts_per_call:
                ev.append(
                    Evidence(
                        f"{n} attempts for one call (lanes: {', '.join(v.lanes())})",
                        FAIL,
                        v.key,
                        v.attempt_ids,
                        None,
                        v.attempts[-1].t_start,
                        n,
                        self.max_attempts_per_call,
                    )
                )
            for lane in v.lanes():
                on = v.on(lane)
                if self.max_attempts_per_lane_per_call is not None and len(on) > self.max_attempts_per_lane_per_call:
                    ev.append(
                        Evidence(
                            f"{len(on)} attempts on {lane} for one call",
                            FAIL,
                            v.key,
                            ids(on),
                            lane,
                            on[-1].t_start,
                            len(on),
                            self.max_attempts_per_lane_per_call,
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
                    ev.append(
                        Evidence(
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
                    )
        total = sum(len(v.attempts) for v in views)
        if self.max_total is not None and total > self.max_total:
            all_ids = tuple(a.id for v in views for a in v.attempts)
            ev.append(Evidence(f"{total} attempts in total", FAIL, None, all_ids, None, None, total, self.max_total))
        summary = (
            f"{total} attempts for {len(views)} calls, at most {worst_per_call} per call; "
            f"retry layers seen: {worst_layers} (SDK loops per lane per call: up to {worst_amp})"
        )
        return self.judge(ev, summary)


@register("honors_retry_after")
@dataclass(frozen=True)
class HonorsRetryAfter(Check):
    """No attempt reaches a lane before the delay that lane asked for (``Retry-After``).

    Catches clients that ignore or cap the server's delay (F01, F09: e.g. anthropic-sdk replaces
    ``retry-after: 90`` with a 0.5-8 s backoff) and so get throttled harder or banned. For every
    attempt that asked for a delay, the next attempt to the same lane that started after it ended
    (of the same call with ``scope: call``, of any call with ``scope: lane``) must start at least
    ``tolerance × retry_after`` after it ended. Actual gap vs requested is reported for each.
    ``UNKNOWN`` if no lane asked for a delay, or nobody came back to judge.
    """

    tolerance: float = 0.9
    scope: Literal["call", "lane"] = "call"

    def validate(self) -> None:
        self._positive("tolerance")

    def evaluate(self, journal: Journal) -> CheckResult:
        everything = journal.attempts()
        asked = [a for a in everything if a.retry_after is not None and a.retry_after > 0]
        if not asked:
            return self.result(UNKNOWN, "no attempt carried a Retry-After")
        # candidates per (lane, call) or per lane, in start order, with their start times for bisect
        streams: dict[tuple[str, str | None], list[Attempt]] = defaultdict(list)
        for b in everything:
            streams[(b.lane, None if self.scope == "lane" else (b.call_id or b.fingerprint))].append(b)
        starts = {k: [b.t_start for b in v] for k, v in streams.items()}
        ev: list[Evidence] = []
        for a in asked:
            assert a.retry_after is not None
            t_ans = end_time(a)
            key = a.call_id or a.fingerprint
            sk = (a.lane, None if self.scope == "lane" else key)
            nxt = [b for b in streams[sk][bisect_left(starts[sk], t_ans) :] if b is not a]
            if not nxt:
                ev.append(
                    Evidence(
                        f"asked {a.retry_after:g}s; no later attempt to {a.lane}",
                        PASS,
                        key,
                        (a.id,),
                        a.lane,
                        t_ans,
                        None,
                        a.retry_after,
                    )
                )
                continue
            b = nxt[0]
            gap = b.t_start - t_ans
            need = self.tolerance * a.retry_after
            ok = gap >= need
            ev.append(
                Evidence(
                    f"asked {a.retry_after:g}s, next attempt {b.id} came after {gap:.3f}s"
                    + ("" if ok else f" (< {need:.3f}s)"),
                    PASS if ok else FAIL,
                    b.call_id or b.fingerprint,
                    (a.id, b.id),
                    a.lane,
                    b.t_start,
                    gap,
                    need,
                )
            )
        judged = [e for e in ev if e.measured is not None]
        bad = sum(e.verdict is FAIL for e in ev)
        if not judged:
            return self.result(UNKNOWN, f"{len(asked)} Retry-After(s) asked, no later attempt to judge", ev)
        return self.judge(ev, f"{len(judged)} retries after a Retry-After, {bad} too early")


@register("no_hammering")
@dataclass(frozen=True)
class NoHammering(Check):
    """At most ``max_attempts`` attempts to a lane in any ``window`` seconds while it is failing.

    Catches retry storms: every concurrent call retrying a throttled or overloaded lane at once
    (F02, F05, F10, F31), which keeps it down and burns quota. Only failing attempts (outcome
    error or unknown) count unless ``only_failing`` is false; the worst window per lane is reported
    with the number of distinct calls in it (a storm across concurrent calls). ``UNKNOWN`` when no
    lane failed.
    """

    max_attempts: int = 5
    window: float = 1.0
    only_failing: bool = True

    def validate(self) -> None:
        self._positive("max_attempts", "window")

    def evaluate(self, journal: Journal) -> CheckResult:
        by_lane: dict[str, list[Attempt]] = defaultdict(list)
        for a in journal.attempts():
            if not self.only_failing or is_failure(a):
                by_lane[a.lane].append(a)
        if not by_lane:
            return self.result(UNKNOWN, "no failing attempts: nothing to judge" if self.only_failing else "no attempts")
        ev: list[Evidence] = []
        peaks = []
        for lane, atts in sorted(by_lane.items()):
            best: list[Attempt] = []
            j = 0
            for i, a in enumerate(atts):  # atts are in start order
                while atts[j].t_start < a.t_start - self.window:
                    j += 1
                if i - j + 1 > len(best):
                    best = atts[j : i + 1]
            n = len(best)
            calls = len({b.call_id or b.fingerprint or b.id for b in best})
            peaks.append(f"{lane}: {n}")
            what = f"{n} attempts to {lane} in {self.window:g}s from {calls} calls"
            verdict = FAIL if n > self.max_attempts else PASS
            ev.append(Evidence(what, verdict, None, ids(best), lane, best[0].t_start, n, self.max_attempts))
        return self.judge(ev, f"peak attempts per {self.window:g}s while failing: {', '.join(peaks)}")


@register("backoff")
@dataclass(frozen=True)
class Backoff(Check):
    """Retries back off: waits grow, and concurrent calls do not retry in lockstep.

    Catches fixed-interval or zero-delay retry loops, and backoff without jitter, whose retries
    from many concurrent calls arrive together (thundering herd) and knock a recovering lane over
    again (F02, F05). For each call with at least three attempts on one lane, each wait (end of an
    attempt → start of the next) must be ≥ ``min_growth × (1 - tolerance) ×`` the previous one
    (Stainless jitter shortens a wait by up to 25 %, and waits stop growing at the cap: raise
    ``tolerance`` for long runs). With ``jitter``, the waits of different calls at the same retry
    index on one lane must not all lie within ``lockstep_window`` seconds of each other. Waits
    that follow a ``Retry-After`` are the server's choice and are left out. ``UNKNOWN`` with too
    few retries to judge.
    """

    min_growth: float = 1.0
    tolerance: float = 0.3
    jitter: bool = True
    lockstep_window: float = 0.005

    def validate(self) -> None:
        self._positive("min_growth", "lockstep_window")
        self._require(0 <= self.tolerance < 1, f"parameter 'tolerance' must be in [0, 1), got {self.tolerance!r}")

    def evaluate(self, journal: Journal) -> CheckResult:
        ev: list[Evidence] = []
        judged_growth = 0
        # (lane, retry index) -> [(wait, call key, attempt ids)]
        waits: dict[tuple[str, int], list[tuple[float, str, tuple[str, str]]]] = defaultdict(list)
        for v in call_views(journal):
            for lane in v.lanes():
                on = v.on(lane)
                gaps: list[tuple[float, Attempt, Attempt]] = []
                for k, (a, b) in enumerate(pairwise(on), start=1):
                    if a.retry_after is not None:
                        gaps.append((-1.0, a, b))  # server-directed: not ours to judge
                        continue
                    g = b.t_start - end_time(a)
                    gaps.append((g, a, b))
                    waits[(lane, k)].append((g, v.key, (a.id, b.id)))
                for (g1, a1, _), (g2, a2, b2) in pairwise(gaps):
                    if g1 < 0 or g2 < 0:
                        continue
                    judged_growth += 1
                    need = self.min_growth * (1 - self.tolerance) * g1
                    if g2 + 1e-9 < need:
                        ev.append(
                            Evidence(
                                f"wait shrank on {lane}: {g1:.3f}s then {g2:.3f}s (< {need:.3f}s)",
                                FAIL,
                                v.key,
                                (a1.id, a2.id, b2.id),
                                lane,
                                b2.t_start,
                                g2,
                                need,
                            )
                        )
                    else:
                        ev.append(
                            Evidence(
                                f"wait {g1:.3f}s then {g2:.3f}s on {lane}",
                                PASS,
                                v.key,
                                (a1.id, a2.id, b2.id),
                                lane,
                                b2.t_start,
                                g2,
                                need,
                            )
                        )
        judged_jitter = 0
        if self.jitter:
            for (lane, k), items in sorted(waits.items()):
                if len(items) < 2:
                    continue
                judged_jitter += 1
                ws = [w for w, _, _ in items]
                spread = max(ws) - min(ws)
                att = tuple(i for _, _, pair in items for i in pair)
                if spread < self.lockstep_window:
                    ev.append(
                        Evidence(
                            f"no jitter: retry #{k} of {len(items)} calls on {lane} all waited "
                            f"{min(ws):.3f}-{max(ws):.3f}s",
                            FAIL,
                            None,
                            att,
                            lane,
                            None,
                            spread,
                            self.lockstep_window,
                        )
                    )
                else:
                    ev.append(
                        Evidence(
                            f"retry #{k} of {len(items)} calls on {lane}: waits spread {spread:.3f}s",
                            PASS,
                            None,
                            att,
                            lane,
                            None,
                            spread,
                            self.lockstep_window,
                        )
                    )
        if not judged_growth and not judged_jitter:
            return self.result(UNKNOWN, "too few retries to judge backoff")
        bad = sum(e.verdict is FAIL for e in ev)
        return self.judge(
            ev, f"{judged_growth} successive waits and {judged_jitter} concurrent retry groups judged, {bad} bad"
        )


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
