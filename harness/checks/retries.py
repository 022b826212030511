"""Checks on retry discipline: how many, how soon, how spread out, and when not at all.

``retries_bounded``, ``honors_retry_after`` and ``no_retry_on_permanent`` are here; how retries
are spread out in time (``no_hammering``, ``backoff``) is in :mod:`harness.checks.backoff`,
re-exported here.
"""

from __future__ import annotations

import dataclasses
import math
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from ..journal import Attempt, Journal
from ._calls import (
    attempt_call_keys,
    call_views,
    doubt,
    end_time,
    ids,
    permanent_reason,
)
from .backoff import Backoff, NoHammering
from .base import Check, CheckResult, Evidence, Verdict, register

__all__ = ["Backoff", "HonorsRetryAfter", "NoHammering", "NoRetryOnPermanent", "RetriesBounded", "sdk_runs"]

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
        key = attempt_call_keys(journal)
        views = {v.key: v for v in call_views(journal)}
        grace = IN_FLIGHT * getattr(journal, "scale", 1.0)
        by_lane: dict[str, list[Attempt]] = defaultdict(list)
        for b in everything:
            by_lane[b.lane].append(b)
        starts = {k: [b.t_start for b in v] for k, v in by_lane.items()}
        # per lane and call, for the next attempt of the same call (scope: call) in one bisect
        by_call: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
        for b in everything:
            by_call[(b.lane, key[b.id])].append(b)
        call_starts = {k: [b.t_start for b in v] for k, v in by_call.items()}
        last_start = max((b.t_start for b in everything), default=-math.inf)
        ev: list[Evidence] = []
        for a in asked:
            assert a.retry_after is not None
            t_ans = end_time(a)
            mine = key[a.id]
            nxt = None
            lane_key = (a.lane, mine)
            scan = (
                by_call[lane_key][bisect_left(call_starts[lane_key], t_ans) :]
                if self.scope == "call"
                else by_lane[a.lane][bisect_left(starts[a.lane], t_ans) :]
            )
            for b in scan:
                same = key[b.id] == mine
                if b is a or (self.scope == "call" and not same) or (not same and b.t_start < t_ans + grace):
                    continue
                nxt = b
                break
            if nxt is None:
                # honoured if traffic went on elsewhere past the delay (the agent could have come back)
                went_on = last_start >= t_ans + self.tolerance * a.retry_after
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
