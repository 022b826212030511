"""Checks on what the agent got in the end: answers, errors, truncation, liveness, attribution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..answers import recorded_text
from ..attribution import text_matches
from ..journal import Attempt, Journal
from ._calls import CallView, call_views, has_call_records, ids, unattributed
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN


@register("no_lost_calls")
@dataclass(frozen=True)
class NoLostCalls(Check):
    """Every call ends with a complete answer or a clean, classified error (within ``budget``).

    Catches the worst failure of a router under faults: a call that simply vanishes (hangs, is
    swallowed, or ends in an unclassified crash) or takes longer than the budget to end. A call
    record with outcome ``ok`` needs ``complete != False``; ``error`` needs an ``error_type``.
    Without a call record, some attempt must have delivered the whole answer: the harness cannot
    tell a clean error it never saw from a lost call, so such a call fails (report calls with
    ``chaos.call``). A call whose outcome is unknown is ``UNKNOWN``, never a pass.
    """

    budget: float | None = None

    def validate(self) -> None:
        self._positive("budget")

    def evaluate(self, journal: Journal) -> CheckResult:
        views = call_views(journal)
        if not views:
            return self.result(UNKNOWN, "no calls in the journal")
        ev = [self._judge(v) for v in views]
        bad = sum(e.verdict is FAIL for e in ev)
        unk = sum(e.verdict is UNKNOWN for e in ev)
        summary = f"{len(views) - bad - unk}/{len(views)} calls ended cleanly"
        if bad:
            summary += f", {bad} lost"
        if unk:
            summary += f", {unk} with unknown outcome"
        stray = [a for a in unattributed(journal) if a.outcome != "ok"]
        if stray:
            ev.append(
                Evidence(
                    f"{len(stray)} failed attempt(s) outside every reported call: a call the workload did not report "
                    "may have been lost",
                    UNKNOWN,
                    None,
                    ids(stray),
                    stray[0].lane,
                    stray[0].t_start,
                )
            )
            summary += f"; {len(stray)} failed attempts tied to no call"
        return self.judge(ev, summary)

    def _judge(self, v: CallView) -> Evidence:
        c = v.call
        atts = v.attempt_ids
        if c is not None:
            if c.outcome == "ok" and c.complete is False:
                return Evidence("call accepted an incomplete answer", FAIL, c.id, atts, c.lane, c.t_end)
            if c.outcome == "error" and not c.error_type:
                return Evidence(f"call ended in an unclassified error: {c.error!r}", FAIL, c.id, atts, c.lane, c.t_end)
            if c.outcome not in ("ok", "error"):
                return Evidence("call outcome unknown", UNKNOWN, c.id, atts, c.lane, c.t_end)
            how = "complete answer" if c.outcome == "ok" else f"clean error {c.error_type}"
            if self.budget is not None:
                if c.t_end is None:
                    return Evidence(f"{how}, but the call never recorded an end", UNKNOWN, c.id, atts, c.lane)
                took = c.t_end - c.t_start
                if took > self.budget:
                    return Evidence(
                        f"{how} after {took:.3f}s, over budget", FAIL, c.id, atts, c.lane, c.t_end, took, self.budget
                    )
                return Evidence(how, PASS, c.id, atts, c.lane, c.t_end, took, self.budget)
            return Evidence(how, PASS, c.id, atts, c.lane, c.t_end)
        done = v.complete_attempts()
        if not done and any(a.end_reason == "unknown" for a in v.attempts):
            # still open when the lanes stopped (an interrupted drill): nobody can know how it ended
            return Evidence("in flight when the drill stopped, and no call record", UNKNOWN, v.key, atts)
        if not done:
            return Evidence("no attempt delivered a complete answer and no call record", FAIL, v.key, atts)
        a = done[0]
        took = (a.t_end or a.t_start) - v.t_start
        if self.budget is not None and took > self.budget:
            return Evidence(
                f"first complete answer after {took:.3f}s, over budget",
                FAIL,
                v.key,
                atts,
                a.lane,
                a.t_end,
                took,
                self.budget,
            )
        return Evidence("complete answer", PASS, v.key, atts, a.lane, a.t_end, took, self.budget)


def _reference_attempt(v: CallView) -> Attempt | None:
    """The attempt whose ``expected_tokens`` defines the whole answer for this call."""
    lane = v.call.lane if v.call is not None else None
    with_exp = [a for a in v.attempts if a.expected_tokens is not None]
    on_lane = [a for a in with_exp if a.lane == lane]
    served = v.serving_attempt()
    if served is not None and served.expected_tokens is not None:
        return served
    if on_lane:
        return on_lane[-1]
    return with_exp[-1] if with_exp else None


class _Answers:
    """Every canonical answer the drill's lanes gave, to tell whose answer an accepted text is."""

    def __init__(self, views: list[CallView]) -> None:
        self.owner: dict[tuple[str, int, str | None], str] = {}
        for v in views:
            for a in v.attempts:
                if a.fingerprint and a.expected_tokens:
                    self.owner.setdefault((a.fingerprint, a.expected_tokens, a.answer), v.key)

    def whose(self, text: str, mine: str) -> str | None:
        for (fp, n, answer), key in self.owner.items():
            if key != mine and text_matches(text, fp, n, answer):
                return key
        return None


@register("no_truncated_success")
@dataclass(frozen=True)
class NoTruncatedSuccess(Check):
    """No call reports success with less than its whole answer, or with an answer not its own.

    Catches the silent data-loss bug of streaming clients: a stream cut mid-answer (no terminator)
    that the agent accepts as if it were finished (F16), and its cousins: an empty answer, or the
    answer of another call (a stale cache, a shared buffer), reported as success. The simulator's
    answers are canonical, so the accepted text is compared with the canonical answer of the call's
    conversation: it must hold it whole (an agent may add to it); a prefix is a truncation; another
    conversation's answer, or text that is neither, is not this call's answer. A call record that
    says ``complete: false`` with outcome ``ok`` fails outright. Where no canonical answer exists
    (a real upstream), a cut attempt with no complete attempt after it, in a call reported ok,
    fails. Without call records there is nothing the agent accepted to judge: ``UNKNOWN``.
    """

    def evaluate(self, journal: Journal) -> CheckResult:
        if not has_call_records(journal):
            return self.result(UNKNOWN, "no call records: what the agent accepted is not known")
        everything = call_views(journal)
        views = [v for v in everything if v.call is not None and v.call.outcome == "ok"]
        if not views:
            return self.result(UNKNOWN, "no call reported success")
        answers = _Answers(everything)
        ev = [self._judge(v, answers) for v in views]
        bad = sum(e.verdict is FAIL for e in ev)
        unk = sum(e.verdict is UNKNOWN for e in ev)
        summary = f"{len(views)} successful calls, {bad} truncated or not their own answer"
        if unk:
            summary += f", {unk} not judgeable"
        return self.judge(ev, summary)

    def _judge(self, v: CallView, answers: _Answers) -> Evidence:
        c = v.call
        assert c is not None
        atts = v.attempt_ids
        note = v.attributed()
        if c.complete is False:
            return Evidence("call reported ok with complete=False", FAIL, c.id, atts, c.lane, c.t_end)
        tooled = [a for a in v.complete_attempts() if a.tool_calls]
        if tooled and not c.text and tooled[-1] is v.attempts[-1]:
            # the answer the call ended on asked for tools: there is no text to be whole
            return Evidence("answered with tool calls", PASS, c.id, atts, c.lane, c.t_end)
        if c.text is not None and not c.text.strip():
            return Evidence("accepted an empty answer as success" + note, FAIL, c.id, atts, c.lane, c.t_end)
        own = [a for a in v.attempts if a.fingerprint and a.expected_tokens and not a.tool_calls]
        if c.text is not None and own:
            kinds = {a.id: text_matches(c.text, a.fingerprint, a.expected_tokens, a.answer) for a in own}
            if "whole" in kinds.values():
                return Evidence("whole answer" + note, PASS, c.id, atts, c.lane, c.t_end)
            n_got = len(c.text.split())
            prefix = [a for a in own if kinds[a.id] == "prefix"]
            if prefix:
                ref = max(prefix, key=lambda a: a.expected_tokens or 0)
                if ref.answer is not None:  # a recorded answer: its words are not its tokens
                    return Evidence(
                        f"accepted {len(c.text.strip())} of {len(recorded_text(ref.answer) or '')} characters "
                        "(a prefix of the recorded answer)" + note,
                        FAIL,
                        c.id,
                        atts,
                        c.lane,
                        c.t_end,
                        float(len(c.text.strip())),
                        float(len(recorded_text(ref.answer) or "")),
                    )
                return Evidence(
                    f"accepted {n_got} of {ref.expected_tokens} tokens (a prefix of the canonical answer)" + note,
                    FAIL,
                    c.id,
                    atts,
                    c.lane,
                    c.t_end,
                    float(n_got),
                    float(ref.expected_tokens or 0),
                )
            other = answers.whose(c.text, v.key)
            what = (
                f"accepted the answer of another conversation (call {other}'s), not its own"
                if other is not None
                else f"accepted {n_got} words that are not this call's answer (neither the canonical answer of its "
                "conversation nor a prefix of it)"
            )
            return Evidence(what + note, FAIL, c.id, atts, c.lane, c.t_end)
        for a in v.attempts:
            if a.end_reason != "cut":
                continue
            later = [
                b
                for b in v.complete_attempts()
                if b is not a and (b.t_start > a.t_start or (b.t_end or 0.0) >= (a.t_end or 0.0))
            ]
            if not later:
                return Evidence(
                    f"attempt {a.id} on {a.lane} was cut after {a.tokens} tokens and the call was "
                    "reported ok with no complete attempt after it" + note,
                    FAIL,
                    c.id,
                    atts,
                    a.lane,
                    a.t_end,
                    float(a.tokens),
                    None if a.expected_tokens is None else float(a.expected_tokens),
                )
        if c.complete is True and v.serving_attempt() is not None:
            return Evidence(
                "the agent says the answer was whole, and a complete attempt exists", PASS, c.id, atts, c.lane, c.t_end
            )
        if v.serving_attempt() is not None and c.text is None:
            return Evidence("no text reported; a complete attempt exists", UNKNOWN, c.id, atts, c.lane, c.t_end)
        if not v.attempts:
            return Evidence("no attempt of this call was seen" + note, UNKNOWN, c.id, atts, c.lane, c.t_end)
        return Evidence("nothing to compare the accepted answer with", UNKNOWN, c.id, atts, c.lane, c.t_end)


@register("reports_fallback_model")
@dataclass(frozen=True)
class ReportsFallbackModel(Check):
    """Every successful call names the lane that produced it, and that answer carried usage.

    Catches routers that fall back silently: the caller is billed and judged on a model it did not
    ask for, and cost or quality dashboards attribute the answer to the wrong lane. The call
    record's ``lane`` must equal the lane of a complete attempt of that call, and that attempt must
    have reported usage.
    """

    def evaluate(self, journal: Journal) -> CheckResult:
        if not has_call_records(journal):
            return self.result(UNKNOWN, "no call records: the lane the agent reported is not known")
        views = [v for v in call_views(journal) if v.call is not None and v.call.outcome == "ok"]
        if not views:
            return self.result(UNKNOWN, "no call reported success")
        ev: list[Evidence] = []
        for v in views:
            c = v.call
            assert c is not None
            done = v.complete_attempts()
            lanes = sorted({a.lane for a in done})
            if not done:
                ev.append(Evidence("no complete attempt to attribute", UNKNOWN, c.id, v.attempt_ids, c.lane))
            elif not c.lane:
                ev.append(
                    Evidence(
                        f"call does not name its lane (served by {', '.join(lanes)})",
                        FAIL,
                        c.id,
                        ids(done),
                        None,
                        c.t_end,
                    )
                )
            elif c.lane not in lanes:
                ev.append(
                    Evidence(
                        f"call names lane {c.lane!r} but was served by {', '.join(lanes)}",
                        FAIL,
                        c.id,
                        ids(done),
                        c.lane,
                        c.t_end,
                    )
                )
            else:
                a = [x for x in done if x.lane == c.lane][-1]
                if not a.usage:
                    ev.append(Evidence(f"answer from {a.lane} carried no usage", FAIL, c.id, (a.id,), a.lane, a.t_end))
                else:
                    ev.append(Evidence(f"served by {a.lane} with usage", PASS, c.id, (a.id,), a.lane, a.t_end))
        bad = sum(e.verdict is FAIL for e in ev)
        return self.judge(ev, f"{len(views)} successful calls, {bad} misattributed or without usage")


@register("alive_after")
@dataclass(frozen=True)
class AliveAfter(Check):
    """The agent still works after the faults: the last call that started after the last fault
    window closed (or after ``after`` seconds) succeeded; with faults that never close a window
    (always on, or on a share of attempts), the drill's last call succeeded.

    Catches agents that survive a fault only to stay broken: a poisoned connection pool, a circuit
    that never closes, a crashed worker, a cached error. ``UNKNOWN`` when no call started after the
    window closed, or the last call's outcome is unknown.
    """

    lane_params: ClassVar[tuple[str, ...]] = ("lane",)

    after: float | None = None
    lane: str | None = None

    def validate(self) -> None:
        self._positive("after", allow_zero=True)

    def evaluate(self, journal: Journal) -> CheckResult:
        cutoff = self.after
        since = f"after t={cutoff:.3f}" if cutoff is not None else ""
        if cutoff is None:
            closes = [
                m.t for m in journal.marks("fault_window_close") if self.lane is None or m.lane in (self.lane, None)
            ]
            starts = [v.t_start for v in call_views(journal)]
            # the last window after which the workload went on (a lane that flaps until the drill
            # ends always has one more window closing as the calls run out)
            judged = [c for c in closes if any(t >= c for t in starts)]
            cutoff = max(judged) if judged else (max(closes) if closes else None)
            since = f"after t={cutoff:.3f}" if cutoff is not None else "of the drill (no fault window closed)"
        views = [v for v in call_views(journal) if cutoff is None or v.t_start >= cutoff]
        if not views:
            if cutoff is None:
                return self.result(UNKNOWN, "no call in the journal")
            return self.result(UNKNOWN, f"no call started after t={cutoff:.3f}")
        v = views[-1]
        out = v.outcome
        lane = v.call.lane if v.call is not None and v.call.lane else (v.attempts[-1].lane if v.attempts else None)
        if out == "ok" and (v.call is None or v.call.complete is not False):
            e = Evidence(f"last call {since} succeeded", PASS, v.key, v.attempt_ids, lane, v.t_end)
        elif out == "unknown":
            e = Evidence(f"last call {since} has an unknown outcome", UNKNOWN, v.key, v.attempt_ids, lane, v.t_end)
        else:
            e = Evidence(f"last call {since} did not succeed ({out})", FAIL, v.key, v.attempt_ids, lane, v.t_end)
        counted = f"{len(views)} calls {since}" if cutoff is not None else f"{len(views)} calls"
        return self.judge([e], f"{counted}; last one {since}: {e.verdict.value}")
