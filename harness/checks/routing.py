"""Checks on routing between lanes: fallback, recovery to the healed lane, circuit breaking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..journal import Attempt, Journal
from ._calls import call_views, doubt, end_time, ids, is_complete, is_failure
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


@register("fallback_within")
@dataclass(frozen=True)
class FallbackWithin(Check):
    """When ``primary`` fails for a call, ``fallback`` answers it within ``within`` seconds.

    Catches the router that knows about its fallback but reaches it too late (after the full SDK
    retry ladder and a 600 s read timeout) or never (F05, F06, F10, F12, F28). Clock: from the end
    of the call's first failing attempt on ``primary`` to the end (``measure: end``) or the first
    token (``measure: first_token``) of the first complete attempt on ``fallback`` (or, with
    ``allow_primary_recovery``, a complete retry on ``primary``). ``UNKNOWN`` if primary never
    failed, or if the call's outcome is unknown and nothing answered it.
    """

    lane_params: ClassVar[tuple[str, ...]] = ("primary", "fallback")

    timed = True

    primary: str
    fallback: str
    within: float
    measure: Literal["end", "first_token"] = "end"
    allow_primary_recovery: bool = True

    def validate(self) -> None:
        self._positive("within")
        self._require(self.primary != self.fallback, "primary and fallback must be different lanes")

    def _t(self, a: Attempt) -> float:
        if self.measure == "first_token" and a.t_first_token is not None:
            return a.t_first_token
        return end_time(a)

    def _outages(self, journal: Journal) -> list[tuple[float, float]]:
        """Windows in which ``primary`` refused connections (``lane_down``/``lane_up`` marks):
        the attempts that failed there never reached a lane, so they are not in the journal."""
        out: list[tuple[float, float]] = []
        down: float | None = None
        for m in journal.marks():
            if m.lane != self.primary:
                continue
            if m.kind == "lane_down" and down is None:
                down = m.t
            elif m.kind == "lane_up" and down is not None:
                out.append((down, m.t))
                down = None
        if down is not None:
            out.append((down, float("inf")))
        return out

    def _refused(self, v: object, outages: list[tuple[float, float]]) -> Evidence | None:
        """A call that started while primary was down and never reached it: judged from its start
        (the refused connection left no attempt), so the measured time is an upper bound."""
        call = getattr(v, "call", None)
        attempts = getattr(v, "attempts", [])
        start = call.t_start if call is not None else (attempts[0].t_start if attempts else None)
        if start is None or not any(lo <= start < hi for lo, hi in outages):
            return None
        rescues = sorted((a for a in attempts if a.lane == self.fallback and is_complete(a)), key=self._t)
        key = getattr(v, "key", None)
        if rescues:
            took = self._t(rescues[0]) - start
            return Evidence(
                f"{self.primary} was down (refusing connections); answered by {self.fallback} {took:.3f}s "
                "after the call started",
                PASS if took <= self.within else FAIL,
                key,
                ids(attempts),
                self.fallback,
                self._t(rescues[0]),
                took,
                self.within,
            )
        if call is not None and call.outcome == "unknown":
            return Evidence(
                f"{self.primary} was down; call outcome unknown", UNKNOWN, key, ids(attempts), self.primary, start
            )
        return Evidence(
            f"{self.primary} was down and {self.fallback} did not answer", FAIL, key, ids(attempts), self.primary, start
        )

    def evaluate(self, journal: Journal) -> CheckResult:
        ev: list[Evidence] = []
        outages = self._outages(journal)
        for v in call_views(journal):
            failed = [a for a in v.on(self.primary) if is_failure(a)]
            if not failed:
                if outages and not v.on(self.primary):
                    item = self._refused(v, outages)
                    if item is not None:
                        ev.append(item)
                continue
            first = failed[0]
            t0 = end_time(first)
            lanes = (self.fallback, self.primary) if self.allow_primary_recovery else (self.fallback,)
            rescues = [a for a in v.attempts if a.lane in lanes and is_complete(a) and a.t_start >= first.t_start]
            rescues.sort(key=self._t)
            involved = ids([a for a in v.attempts if a.lane in (self.primary, self.fallback)])
            if rescues:
                r = rescues[0]
                took = self._t(r) - t0
                via = "fallback" if r.lane == self.fallback else "a primary retry"
                ok = took <= self.within
                ev.append(
                    doubt(
                        Evidence(
                            f"answered by {via} on {r.lane} {took:.3f}s after the first failure on {self.primary}",
                            PASS if ok else FAIL,
                            v.key,
                            involved,
                            r.lane,
                            self._t(r),
                            took,
                            self.within,
                        ),
                        v,
                    )
                )
            elif v.call is not None and v.call.outcome == "unknown":
                ev.append(
                    Evidence(
                        f"{self.primary} failed; call outcome unknown, no answer seen",
                        UNKNOWN,
                        v.key,
                        involved,
                        self.primary,
                        t0,
                        None,
                        self.within,
                    )
                )
            else:
                tried = v.on(self.fallback)
                what = (
                    f"{self.primary} failed and {self.fallback} was tried {len(tried)} times without an answer"
                    if tried
                    else f"{self.primary} failed and {self.fallback} was never tried"
                )
                ev.append(doubt(Evidence(what, FAIL, v.key, involved, self.primary, t0, None, self.within), v))
        if not ev:
            return self.result(UNKNOWN, f"{self.primary} never failed: fallback not exercised")
        bad = sum(e.verdict is FAIL for e in ev)
        worst = max((e.measured for e in ev if e.measured is not None), default=None)
        summary = f"{len(ev)} calls failed on {self.primary}, {bad} not answered within {self.within:g}s"
        if worst is not None:
            summary += f" (slowest rescue {worst:.3f}s)"
        return self.judge(ev, summary)


@register("recovers_within")
@dataclass(frozen=True)
class RecoversWithin(Check):
    """After a fault window on ``lane`` closes, traffic comes back to it within ``within`` seconds.

    Catches routers that fail over but never fail back (F29): a premium lane demoted forever after
    one bad minute, or re-probed so rarely that recovery takes longer than the outage. The window
    ends at each ``fault_window_close`` mark on the lane (or on no lane), or at ``after`` seconds.
    Passes when the lane answers again before any traffic goes elsewhere (or keeps failing)
    later than ``end + within``: within the bound, or at the first traffic after it, when the
    workload was quiet until then. Fails when traffic went elsewhere after ``end + within`` while
    the lane had not answered; ``UNKNOWN`` when the drill had no traffic after ``end + within``
    to tell, or the window reopened first. Windows that closed once the traffic was over, or so
    late that the traffic ended inside their recovery period, are left out (unless no window is
    left): the end of the drill says nothing about the agent.
    """

    lane_params: ClassVar[tuple[str, ...]] = ("lane",)

    timed = True

    lane: str
    within: float
    after: float | None = None

    def validate(self) -> None:
        self._positive("within")
        self._positive("after", allow_zero=True)

    def _window(self, c: float, opens: list[float], allatt: list[Attempt]) -> Evidence:
        deadline = c + self.within
        reopen = next((o for o in opens if o > c), float("inf"))
        good = next((a for a in allatt if a.lane == self.lane and c <= a.t_start < reopen and is_complete(a)), None)
        t_good = good.t_start if good is not None else float("inf")
        late = [a for a in allatt if deadline < a.t_start < min(t_good, reopen)]
        if good is not None and not late:
            first = next((a for a in allatt if a.t_start >= c), None)
            quiet = " (the first traffic since)" if first is good and t_good > deadline else ""
            return Evidence(
                f"{self.lane} answered {t_good - c:.3f}s after the window closed{quiet}",
                PASS,
                None,
                (good.id,),
                self.lane,
                t_good,
                t_good - c,
                self.within,
            )
        if late:
            where = sorted({a.lane for a in late})
            shown = [a for a in allatt if c <= a.t_start < min(t_good, reopen)][:12]
            after = f"; first answer on {self.lane} {t_good - c:.3f}s after" if good is not None else ""
            return Evidence(
                f"no answer from {self.lane} within {self.within:g}s of t={c:.3f} while traffic went on "
                f"({', '.join(where)}){after}",
                FAIL,
                None,
                ids(shown),
                self.lane,
                c,
                None if good is None else t_good - c,
                self.within,
            )
        if reopen <= deadline:
            what = f"window reopened at t={reopen:.3f} before recovery could be judged"
        else:
            what = f"no traffic after t={deadline:.3f}: cannot tell whether {self.lane} would be used"
        return Evidence(what, UNKNOWN, None, (), self.lane, c, None, self.within)

    def evaluate(self, journal: Journal) -> CheckResult:
        if self.after is not None:
            ends = [self.after]
        else:
            ends = [m.t for m in journal.marks("fault_window_close") if m.lane in (self.lane, None)]
        if not ends:
            return self.result(UNKNOWN, f"no fault window closed on {self.lane} (give after=)")
        opens = sorted(m.t for m in journal.marks("fault_window_open") if m.lane in (self.lane, None))
        allatt = journal.attempts()
        ev: list[Evidence] = []
        last_start = max((a.t_start for a in allatt), default=float("-inf"))
        over = [c for c in ends if c > last_start]
        if len(over) < len(ends):
            ends = [c for c in ends if c <= last_start]  # windows that closed once the traffic was over
        cut: list[Evidence] = []
        for c in sorted(ends):
            e = self._window(c, opens, allatt)
            reopened = any(c < o <= c + self.within for o in opens)
            if e.verdict is UNKNOWN and c + self.within > last_start and not reopened:
                cut.append(e)  # the drill's traffic ended inside this window's recovery period
            else:
                ev.append(e)
        if not ev:  # nothing else to judge by: the end of the drill is all there is, and it cannot tell
            ev, cut = cut, []
        bad = sum(e.verdict is FAIL for e in ev)
        summary = f"{len(ev)} fault windows closed on {self.lane}, {bad} without recovery in {self.within:g}s"
        if over and ends != over:
            summary += f" ({len(over)} more closed after the last attempt: nothing left to recover)"
        if cut:
            summary += (
                f" ({len(cut)} more closed less than {self.within:g}s before the traffic ended: "
                "left out, the drill ended before their recovery could be seen)"
            )
        return self.judge(ev, summary)


@register("circuit_opens")
@dataclass(frozen=True)
class CircuitOpens(Check):
    """A lane that keeps failing stops getting traffic, then gets probed.

    Catches routers without a circuit breaker, which keep paying a dead lane's timeout on every
    call (F10, F12, F27, F28): after ``failures`` consecutive failing attempts on ``lane``, at most
    ``max_attempts_while_open`` attempts may start on it during the next ``cooldown`` seconds
    (counted from the end of the last of those failures); with ``probe_within``, at least one
    attempt must start on it within that many seconds (the half-open probe). ``UNKNOWN`` when the
    lane never failed that often, or there was no traffic at all to show the circuit was open.
    """

    lane_params: ClassVar[tuple[str, ...]] = ("lane",)

    timed = True

    lane: str
    failures: int = 3
    max_attempts_while_open: int = 1
    cooldown: float = 1.0
    probe_within: float | None = None

    def validate(self) -> None:
        self._positive("failures", "cooldown", "probe_within")
        self._positive("max_attempts_while_open", allow_zero=True)

    def evaluate(self, journal: Journal) -> CheckResult:
        allatt = journal.attempts()
        on = [a for a in allatt if a.lane == self.lane]
        ev: list[Evidence] = []
        i, run = 0, 0
        start_after = float("-inf")
        while i < len(on):
            a = on[i]
            i += 1
            if a.t_start < start_after:
                continue
            run = run + 1 if is_failure(a) else 0
            if run < self.failures:
                continue
            run = 0
            streak = [x for x in on[:i] if x.t_start >= start_after][-self.failures :]
            t_open = max(end_time(x) for x in streak)
            t_close = t_open + self.cooldown
            during = [x for x in on if t_open < x.t_start <= t_close]
            traffic = [x for x in allatt if t_open < x.t_start <= t_close]
            if len(during) > self.max_attempts_while_open:
                ev.append(
                    Evidence(
                        f"{len(during)} attempts on {self.lane} within {self.cooldown:g}s after "
                        f"{self.failures} consecutive failures",
                        FAIL,
                        None,
                        ids(streak + during),
                        self.lane,
                        t_open,
                        len(during),
                        self.max_attempts_while_open,
                    )
                )
            elif not traffic:
                ev.append(
                    Evidence(
                        f"no traffic at all in the {self.cooldown:g}s after {self.failures} failures",
                        UNKNOWN,
                        None,
                        ids(streak),
                        self.lane,
                        t_open,
                        0,
                        self.max_attempts_while_open,
                    )
                )
            else:
                ev.append(
                    Evidence(
                        f"{len(during)} attempts on {self.lane} while open, {len(traffic)} in all",
                        PASS,
                        None,
                        ids(streak + during),
                        self.lane,
                        t_open,
                        len(during),
                        self.max_attempts_while_open,
                    )
                )
            if self.probe_within is not None:
                ev.append(self._probe(on, allatt, streak, t_open))
            start_after = t_close
        if not ev:
            return self._never_opened(on, allatt)
        bad = sum(e.verdict is FAIL for e in ev)
        return self.judge(ev, f"{self.lane}: {bad} breaches of the open circuit in {len(ev)} observations")

    def _never_opened(self, on: list[Attempt], allatt: list[Attempt]) -> CheckResult:
        """The lane never failed ``failures`` times in a row: either it never failed (nothing to
        judge), or the agent stopped sending it traffic sooner (a permanent error it recognised),
        which is what an open circuit is for."""
        failed = [a for a in on if is_failure(a)]
        if not failed:
            return self.result(UNKNOWN, f"{self.lane} never failed: no circuit to open")
        last = failed[-1]
        t = end_time(last)
        after_on = [x for x in on if x.t_start > t]
        traffic = [x for x in allatt if x.t_start > t]
        if after_on or not traffic:
            return self.result(UNKNOWN, f"{self.lane} never failed {self.failures} times in a row")
        e = Evidence(
            f"the agent stopped sending {self.lane} traffic after {len(failed)} failure(s), "
            f"{len(traffic)} attempts went elsewhere",
            PASS,
            None,
            ids(failed),
            self.lane,
            t,
            0,
            self.max_attempts_while_open,
        )
        ev = [e]
        if self.probe_within is not None:
            ev.append(self._probe(on, allatt, failed[-self.failures :], t))
        return self.judge(ev, f"{self.lane}: abandoned after {len(failed)} failure(s), before a circuit was needed")

    def _probe(self, on: list[Attempt], allatt: list[Attempt], streak: list[Attempt], t_open: float) -> Evidence:
        assert self.probe_within is not None
        deadline = t_open + self.probe_within
        probes = [x for x in on if t_open < x.t_start <= deadline]
        if probes:
            p = probes[0]
            return Evidence(
                f"probed {p.t_start - t_open:.3f}s after opening",
                PASS,
                None,
                (p.id,),
                self.lane,
                p.t_start,
                p.t_start - t_open,
                self.probe_within,
            )
        if any(x.t_start > deadline for x in allatt):
            return Evidence(
                f"{self.lane} not probed within {self.probe_within:g}s while traffic went on",
                FAIL,
                None,
                ids(streak),
                self.lane,
                t_open,
                None,
                self.probe_within,
            )
        return Evidence(
            f"no traffic after t={deadline:.3f}: cannot tell whether {self.lane} would be probed",
            UNKNOWN,
            None,
            ids(streak),
            self.lane,
            t_open,
            None,
            self.probe_within,
        )
