"""Checks on agent loops: episodes (:mod:`harness.episodes`) rather than single calls.

- ``loop_budget``: percentiles of each step's and each episode's route overhead, model wait,
  generation, tool wait and total stay within budget (any subset budgeted).
- ``episodes_complete``: every episode reaches its final answer, or ends in an error the agent
  reported; none is lost or abandoned silently (an agent that restarts the whole task after a
  fault abandons the episode it was in).
- ``no_partial_tool_execution``: the agent never sends back a result for a tool call whose
  arguments were cut, malformed, or ended by the token limit (the next request's conversation
  shows it, so no cooperation is needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..attribution import call_keys
from ..episodes import Episode, Step, episodes
from ..journal import Attempt, Journal
from ._calls import attribution_of, percentile
from .base import Check, CheckResult, Evidence, Verdict, register

PASS, FAIL, UNKNOWN = Verdict.PASS, Verdict.FAIL, Verdict.UNKNOWN

SCOPES = ("step", "episode")
METRICS = ("route", "model_wait", "generation", "tool_wait", "total")
LEVELS = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "max": 100.0}


def _served_lane(s: Step) -> str | None:
    return s.served.lane if s.served is not None else (s.attempts[-1].lane if s.attempts else None)


class _LoopBudget(Check):
    """Percentiles of agent-loop times stay within budget, per step and per episode: any subset of
    ``{step,episode}_{route,model_wait,generation,tool_wait,total}_{p50,p90,p95,p99,max}``.

    A step's route overhead runs from its first attempt to the start of the attempt that served
    it (failed attempts, retry waits, queueing, fallback); model wait is that attempt's time to
    first token, generation its first to last token, tool wait the end of an answer that asked for
    tools to the next step's first request; a step's total runs from its first attempt to the
    next step's (or to its answer's end). An episode's components are its steps' sums and its
    total runs from its first request to its last answer. Catches a premium lane whose queueing or
    fallback eats what its speed saved (route overhead), and an agent whose own tools dominate.
    ``UNKNOWN`` with fewer than ``min_samples`` samples for a budgeted figure."""

    timed = True

    def validate(self) -> None:
        self._positive(*(f"{s}_{m}_{lv}" for s in SCOPES for m in METRICS for lv in LEVELS), "min_samples")

    def budgets(self) -> dict[tuple[str, str, str], float]:
        out = {}
        for s in SCOPES:
            for m in METRICS:
                for lv in LEVELS:
                    b = getattr(self, f"{s}_{m}_{lv}")
                    if b is not None:
                        out[(s, m, lv)] = b
        return out

    def evaluate(self, journal: Journal) -> CheckResult:
        eps = episodes(journal)
        samples: dict[tuple[str, str], list[tuple[float, Episode, Step | None]]] = {}
        for ep in eps:
            for k, x in ep.metrics().items():
                if k in METRICS:
                    samples.setdefault(("episode", k), []).append((x, ep, None))
            for st in ep.steps:
                for k, x in st.metrics().items():
                    samples.setdefault(("step", k), []).append((x, ep, st))
        stats = []
        for scope in SCOPES:
            parts = []
            for m in METRICS:
                xs = [x for x, _, _ in samples.get((scope, m), [])]
                if xs:
                    parts.append(f"{m} p50={percentile(xs, 50):.3f}s")
            if parts:
                n = len(eps) if scope == "episode" else sum(len(e.steps) for e in eps)
                stats.append(f"{scope}s (n={n}): " + " ".join(parts))
        summary = "; ".join(stats) if stats else "no episodes"
        if not eps:
            return self.result(UNKNOWN, "no episodes in the journal: no request reached a lane")
        ev: list[Evidence] = []
        for (scope, m, lv), bound in self.budgets().items():
            xs = sorted(samples.get((scope, m), []), key=lambda p: p[0])
            label = f"{scope} {m} {lv}"
            if len(xs) < self.min_samples or not xs:
                what = f"{label}: {len(xs)} samples, need {self.min_samples}"
                ev.append(Evidence(what, UNKNOWN, None, (), None, None, None, bound))
                continue
            val = percentile([x for x, _, _ in xs], LEVELS[lv])
            if val <= bound:
                ev.append(Evidence(f"{label} = {val:.3f}s", PASS, None, (), None, None, val, bound))
                continue
            over = [p for p in xs if p[0] > bound]
            worst_x, worst_ep, worst_st = over[-1]
            if worst_st is not None:
                att = tuple(a for _, _, s in over[-5:] if s is not None for a in s.attempt_ids)
                where = f"step {worst_st.index + 1} of episode {worst_ep.key}"
                lane, t = _served_lane(worst_st), worst_st.t_start
            else:
                att = tuple(a for _, e, _ in over[-3:] for a in e.attempt_ids)
                where = f"episode {worst_ep.key} ({len(worst_ep.steps)} steps)"
                lane, t = None, worst_ep.t_start
            what = (
                f"{label} = {val:.3f}s over budget; {len(over)} of {len(xs)} {scope}s over {bound:g}s, "
                f"worst {worst_x:.3f}s ({where})"
            )
            ev.append(Evidence(what, FAIL, worst_ep.key, att, lane, t, val, bound))
        return self.judge(ev, summary)


_FIELDS: dict[str, Any] = {f"{s}_{m}_{lv}": float | None for s in SCOPES for m in METRICS for lv in LEVELS}
LoopBudget = register("loop_budget")(
    dataclass(frozen=True)(
        type(
            "LoopBudget",
            (_LoopBudget,),
            {
                "__annotations__": {**_FIELDS, "min_samples": int},
                **dict.fromkeys(_FIELDS),
                "min_samples": 1,
                "__doc__": _LoopBudget.__doc__,
                "__module__": __name__,
            },
        )
    )
)


# -- episodes_complete ---------------------------------------------------------------------------
def _why_unserved(s: Step) -> str:
    last = s.attempts[-1]
    bits = [last.end_reason]
    if last.status is not None and last.status >= 400:
        bits.append(str(last.status))
    if last.fault_name:
        bits.append(f"fault {last.fault_name}")
    return f"{len(s.attempts)} attempt(s), the last {' '.join(bits)} on {last.lane}"


@register("episodes_complete")
@dataclass(frozen=True)
class EpisodesComplete(Check):
    """Every episode reaches its final answer (a whole answer with no tool calls), or ends in an
    error the agent reported (a call record with a classified error, ``drill.call`` or ``POST
    /calls``); none is lost or abandoned silently.

    Catches the agent that restarts the whole task on every fault (the episode it was in is
    abandoned and the task starts again from its first step, throwing the finished steps away),
    the one that drops an episode when a step fails, and one that reports success for an episode
    whose last answer still asked for tools. ``require_final: true`` also fails an episode that
    ended in a reported error. ``UNKNOWN`` for an episode still in flight when the drill stopped
    (interrupted, or an attempt open when the lanes stopped)."""

    require_final: bool = False

    def evaluate(self, journal: Journal) -> CheckResult:
        eps = episodes(journal)
        if not eps:
            return self.result(UNKNOWN, "no episodes in the journal: no request reached a lane")
        att = attribution_of(journal)
        calls = journal.calls()
        records = dict(zip(call_keys(calls), calls, strict=True))
        why = journal.interruption()
        # no drill_stop yet is also a drill judged from inside (``drill.evaluate()`` in its with block)
        # once its workload is done: only an episode among the last things on the lanes was cut off
        last_start = max(a.t_start for a in journal.attempts())
        ev = []
        for ep in eps:
            end = ep.t_end if ep.t_end is not None else ep.t_start
            cut_off = why is not None and (why != "cut short" or last_start <= end)
            ev.append(self._judge(ep, att.call_of, records, why if cut_off else None))
        done = sum(ep.final for ep in eps)
        bad = sum(e.verdict is FAIL for e in ev)
        unk = sum(e.verdict is UNKNOWN for e in ev)
        summary = f"{done}/{len(eps)} episodes reached their final answer"
        steps = [len(ep.steps) for ep in eps if ep.final]
        if steps:
            summary += f" (steps p50={percentile(steps, 50)})"
        if bad:
            summary += f", {bad} lost or abandoned"
        if unk:
            summary += f", {unk} still in flight when the drill stopped"
        return self.judge(ev, summary)

    def _judge(
        self, ep: Episode, call_of: dict[str, str], records: dict[str, Any], interrupted: str | None
    ) -> Evidence:
        last = ep.steps[-1]
        ids_ = ep.attempt_ids
        n = len(ep.steps)
        if ep.final:
            return Evidence(f"episode {ep.key}: final answer in {n} steps", PASS, ep.key, ids_, last.served.lane)
        if last.served is None:
            where = f"step {n} never served ({_why_unserved(last)})"
        else:
            names = ", ".join(c.get("name") or "?" for c in last.served.tool_calls or ())
            where = f"step {n}'s answer asked for tools ({names}) and no request sent their results"
        tail = (last.attempts[-1].id,)
        if ep.superseded_by is not None:
            what = (
                f"episode {ep.key} abandoned: {where}; the task started again from its first step as episode "
                f"{ep.superseded_by}, throwing {n - 1} finished step(s) away"
            )
            return Evidence(what, FAIL, ep.key, tail + ids_[:-1], last.attempts[-1].lane, last.t_start)
        if any(a.end_reason == "unknown" for a in last.attempts):
            what = f"episode {ep.key}: {where}; an attempt was open when the lanes stopped: cannot tell"
            return Evidence(what, UNKNOWN, ep.key, tail)
        keys = [call_of[a.id] for a in ep.attempts if a.id in call_of]
        rec = records.get(keys[-1]) if keys else None
        if rec is not None and rec.outcome == "error" and rec.error_type:
            what = f"episode {ep.key}: {where}; the agent reported {rec.error_type} (call {rec.id})"
            verdict = FAIL if self.require_final else PASS
            return Evidence(what, verdict, ep.key, tail, last.attempts[-1].lane, last.t_start)
        if interrupted:
            what = f"episode {ep.key}: {where}; the drill stopped ({interrupted}) before it could go on: cannot tell"
            return Evidence(what, UNKNOWN, ep.key, tail)
        if rec is not None and rec.outcome == "ok":
            what = f"episode {ep.key} lost: {where}, yet call {rec.id} reported success"
        else:
            what = f"episode {ep.key} abandoned silently: {where}, and no call reported an error"
        return Evidence(what, FAIL, ep.key, tail, last.attempts[-1].lane, last.t_start)


# -- no_partial_tool_execution -------------------------------------------------------------------
def _flaw(a: Attempt, c: dict[str, Any]) -> str | None:
    """Why tool call ``c`` of ``a``'s answer must not run, or None."""
    if not c.get("arguments_complete", True):
        if a.finish == "length":
            return "its arguments were ended by the token limit (finish length)"
        return f"its arguments were cut ({a.end_reason}{', fault ' + a.fault_name if a.fault_name else ''})"
    if not c.get("arguments_valid", True):
        return "its arguments are malformed (not JSON, or not what the tool's schema requires)"
    return None


@register("no_partial_tool_execution")
@dataclass(frozen=True)
class NoPartialToolExecution(Check):
    """The agent never sends back a result for a tool call whose arguments were cut (a stream
    ended mid-call), malformed (invalid JSON, a required property missing) or ended by the token
    limit (``finish_reason: length``), nor for a "repaired" stand-in (arguments no answer wrote,
    in place of such a call): the next request's conversation shows what it executed.

    Catches the agent that parses what arrived of a tool call, or patches it to ``{}``, and runs
    the tool: a half-written file edit, a shell command cut mid-word. ``UNKNOWN`` when no tool
    call was cut or malformed in the drill (nothing to judge), and for a bad call after which no
    request came (nothing shows whether it ran)."""

    def evaluate(self, journal: Journal) -> CheckResult:
        ev: list[Evidence] = []
        seen = 0
        for ep in episodes(journal):
            for i, st in enumerate(ep.steps):
                bad = [(a, c, why) for a in st.attempts for c in a.tool_calls or () if (why := _flaw(a, c))]
                if not bad:
                    continue
                seen += len(bad)
                nxt = ep.steps[i + 1] if i + 1 < len(ep.steps) else None
                ev += self._step(ep, st, nxt, bad)
        if not seen:
            return self.result(UNKNOWN, "no tool call was cut or malformed in this drill: nothing to judge")
        bad_n = sum(e.verdict is FAIL for e in ev)
        summary = f"{seen} cut or malformed tool call(s) seen, {bad_n} executed"
        return self.judge(ev, summary)

    def _step(
        self, ep: Episode, st: Step, nxt: Step | None, bad: list[tuple[Attempt, dict[str, Any], str]]
    ) -> list[Evidence]:
        where = f"step {st.index + 1} of episode {ep.key}"
        if nxt is None:
            later = [a for a in st.attempts if a.t_start > bad[-1][0].t_start]
            if later:  # asked again and nothing followed: not executed, as far as the wire shows
                a = bad[-1][0]
                return [Evidence(f"{where}: the bad call of {a.id} was asked again", PASS, ep.key, (a.id,), a.lane)]
            a = bad[-1][0]
            what = f"{where}: {a.id}'s tool call {bad[-1][2]}, and no later request shows whether it ran"
            return [Evidence(what, UNKNOWN, ep.key, (a.id,), a.lane, a.t_end)]
        first = nxt.attempts[0]
        known = len(st.attempts[0].tool_history or ())
        sent = [h for h in (first.tool_history or ())[known:] if h.get("has_result")]
        good = {c.get("args_sha") for a in st.attempts for c in a.tool_calls or () if not _flaw(a, c)}
        by_sha = {c.get("args_sha"): (a, c, why) for a, c, why in bad}
        bad_names = {c.get("name") for _, c, _ in bad}
        out = []
        for h in sent:
            sha, name = h.get("args_sha"), h.get("name")
            if sha in good:
                continue
            if sha in by_sha:
                a, _, why = by_sha[sha]
                what = f"{where}: {first.id} sent back a result for tool call {name} of {a.id}: {why}"
                out.append(Evidence(what, FAIL, ep.key, (a.id, first.id), first.lane, first.t_start))
            elif h.get("arguments_valid") is False:
                what = f"{where}: {first.id} sent back a result for a {name} call whose arguments are malformed"
                out.append(Evidence(what, FAIL, ep.key, (first.id,), first.lane, first.t_start))
            elif name in bad_names:
                a = next(x for x, c, _ in bad if c.get("name") == name)
                what = (
                    f"{where}: {first.id} sent back a result for a {name} call with arguments no answer wrote, "
                    f"in place of {a.id}'s bad one (repaired and executed)"
                )
                out.append(Evidence(what, FAIL, ep.key, (a.id, first.id), first.lane, first.t_start))
        if not out:
            ids_ = tuple(dict.fromkeys(a.id for a, _, _ in bad))
            what = f"{where}: {len(bad)} bad tool call(s) in {', '.join(ids_)} never executed"
            out.append(Evidence(what, PASS, ep.key, ids_, bad[0][0].lane))
        return out


__all__ = ["EpisodesComplete", "LoopBudget", "NoPartialToolExecution"]
