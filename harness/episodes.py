"""Episodes of an agent loop, seen from the wire: where each step's time went.

An agent loop (think, call tools, observe, revise) sends one request per model turn. A request
whose conversation is an earlier request's conversation plus that answer's tool calls and their
results is the next **step** of the same **episode**: the lane journals each request's
``fingerprint`` and, when it ends with tool calls and results, its ``parent_fingerprint`` (the
fingerprint of the conversation before them, :mod:`harness.toolcalls`), so one dictionary keyed by
fingerprint finds a request's step, or its parent's, in constant time however many requests came
before. Fingerprints are dialect-neutral, so a step asked again on another lane (a fallback
mid-episode) stays in its episode. No cooperation from the agent is needed.

Each step's time is split as DESIGN.md says:

- **route overhead**: from the step's first attempt to the start of the attempt that served it
  (failed attempts, retry waits, queueing before a retry, fallback);
- **model wait**: the serving attempt's time to first token (its queueing included);
- **generation**: its first to last token;
- **tool wait**: from the end of the answer that asked for tools to the next step's first request.

The attempt that served a step is the one whose tool calls the next step's conversation carries
(a step asked again after a cut tool call has several answers; the agent chose one), else the
last complete one. Agents may mark tool spans the wire cannot see (``with drill.tool("run_tests"):``
in-process, ``POST /tools`` on the control API): they are journaled as ``tool_start`` /
``tool_end`` marks and counted in the tool wait they fall in (``tool_marked``).

A request with the first step's conversation sent again after the episode moved on starts a new
episode that supersedes the old one (an agent that restarts the whole task). Two episodes that
send the very same conversation at the same moment cannot be told apart from the wire unless
their call records say so (a call id header or separate ``drill.call`` windows).

Pure code over the journal, tested with hand-made journals in virtual time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .attribution import attribution_of
from .journal import Attempt, Journal

__all__ = [
    "Episode",
    "Estimate",
    "Step",
    "ToolSpan",
    "episodes",
    "estimate_on",
    "lane_pacing",
    "pacing_of",
    "stable_lane",
    "tool_spans",
]

#: what a step's time is split into, in the order reports show them
COMPONENTS = ("route", "model_wait", "generation", "tool_wait")
#: call attribution that is certain (the others are inferred from the conversation or timing)
_CERTAIN = ("header", "window")


@dataclass(frozen=True, slots=True)
class ToolSpan:
    """A tool span an agent marked: its name and when it ran (journal seconds)."""

    name: str
    t_start: float
    t_end: float
    source: str = "drill"

    @property
    def duration(self) -> float:
        return max(0.0, self.t_end - self.t_start)


@dataclass(eq=False)
class Step:
    """One model turn of an episode: its attempts (start order) and the one that served it."""

    index: int
    fingerprint: str
    attempts: list[Attempt] = field(default_factory=list)
    served: Attempt | None = None
    #: the next step's first attempt start, when there is a next step
    t_next: float | None = None
    #: seconds of marked tool spans inside this step's tool wait
    tool_marked: float = 0.0
    tool_names: list[str] = field(default_factory=list)
    _calls: set[str] = field(default_factory=set, repr=False)

    @property
    def t_start(self) -> float:
        return self.attempts[0].t_start

    @property
    def t_end(self) -> float | None:
        """When the step's answer ended (its last attempt's end when nothing served it)."""
        if self.served is not None:
            return self.served.t_end
        ends = [a.t_end for a in self.attempts if a.t_end is not None]
        return max(ends) if ends else None

    @property
    def lanes(self) -> list[str]:
        return sorted({a.lane for a in self.attempts})

    @property
    def attempt_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.attempts)

    @property
    def asked_for_tools(self) -> bool:
        return self.served is not None and bool(self.served.tool_calls)

    @property
    def final(self) -> bool:
        """The step served the episode's final answer: a whole answer with no tool calls."""
        return self.served is not None and self.served.complete and not self.served.tool_calls

    def metrics(self) -> dict[str, float]:
        """Seconds of each component this step has (a step nothing served has none but
        ``total``: from its first attempt to the end of its last)."""
        out: dict[str, float] = {}
        a = self.served
        if a is None:
            end = self.t_end
            if end is not None:
                out["total"] = end - self.t_start
            return out
        out["route"] = max(0.0, a.t_start - self.t_start)
        if a.t_first_token is not None:
            out["model_wait"] = a.t_first_token - a.t_start
        if a.generation_time is not None:
            out["generation"] = a.generation_time
        if self.t_next is not None and a.t_end is not None:
            out["tool_wait"] = max(0.0, self.t_next - a.t_end)
        end = self.t_next if self.t_next is not None else a.t_end
        if end is not None:
            out["total"] = end - self.t_start
        return out


@dataclass(eq=False)
class Episode:
    """One task of an agent loop: its steps in order, until its final answer (or not)."""

    key: str
    steps: list[Step] = field(default_factory=list)
    #: the key of the episode that started the same task again after this one moved on
    superseded_by: str | None = None
    restart_of: str | None = None

    @property
    def t_start(self) -> float:
        return self.steps[0].t_start

    @property
    def t_end(self) -> float | None:
        return self.steps[-1].t_end

    @property
    def final(self) -> bool:
        return bool(self.steps) and self.steps[-1].final

    @property
    def attempts(self) -> list[Attempt]:
        return [a for s in self.steps for a in s.attempts]

    @property
    def attempt_ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.attempts)

    @property
    def lanes(self) -> list[str]:
        return sorted({a.lane for a in self.attempts})

    @property
    def calls(self) -> list[str]:
        """The call records (keys) its attempts were attributed to, in first-seen order."""
        out: list[str] = []
        for s in self.steps:
            out += [c for c in s._calls if c not in out]
        return out

    def metrics(self) -> dict[str, float]:
        """Each component summed over the steps, and ``total`` from the first request to the end
        of the last answer."""
        out = dict.fromkeys(COMPONENTS, 0.0)
        for s in self.steps:
            for k, v in s.metrics().items():
                if k in out:
                    out[k] += v
        end = self.t_end
        if end is not None:
            out["total"] = end - self.t_start
        out["tool_marked"] = sum(s.tool_marked for s in self.steps)
        return out


# -- tool spans marked by the agent --------------------------------------------------------------
def tool_spans(journal: Journal) -> list[ToolSpan]:
    """The tool spans agents marked (``tool_start`` / ``tool_end`` marks paired by ``span``);
    a span never closed is left out (the agent died inside its tool)."""
    starts = {m.detail.get("span"): m for m in journal.marks("tool_start")}
    out = []
    for m in journal.marks("tool_end"):
        s = starts.get(m.detail.get("span"))
        if s is not None:
            name = str(s.detail.get("name") or "tool")
            out.append(ToolSpan(name, s.t, max(s.t, m.t), str(s.detail.get("source") or "drill")))
    return sorted(out, key=lambda sp: sp.t_start)


# -- grouping ----------------------------------------------------------------------------------
def _certain_calls(journal: Journal) -> dict[str, str]:
    att = attribution_of(journal)
    return {aid: key for aid, key in att.call_of.items() if att.basis.get(aid) in _CERTAIN}


def episodes(journal: Journal) -> list[Episode]:
    """The journal's episodes in start order (see the module's docstring). Attempts without a
    conversation fingerprint (a models listing) belong to none. Cached per state of the journal."""
    state = (len(journal), len(journal.calls()), len(journal.marks()))
    cached = getattr(journal, "_routechaos_episodes", None)
    if cached is not None and cached[0] == state:
        return cached[1]
    result = _group(journal)
    journal._routechaos_episodes = (state, result)  # type: ignore[attr-defined]
    return result


def _group(journal: Journal) -> list[Episode]:
    calls = _certain_calls(journal)
    by_fp: dict[str, list[tuple[Episode, Step]]] = {}
    out: list[Episode] = []

    def new_step(ep: Episode, a: Attempt) -> Step:
        step = Step(len(ep.steps), a.fingerprint or "")
        ep.steps.append(step)
        by_fp.setdefault(step.fingerprint, []).append((ep, step))
        return step

    for a in journal.attempts():
        fp = a.fingerprint
        if not fp:
            continue
        ck = calls.get(a.id)
        home: Step | None = None
        restart_of: Episode | None = None
        for ep, step in reversed(by_fp.get(fp, ())):
            if ep.superseded_by is not None:
                continue  # a task started again: its old episode is closed
            if ep.steps[-1] is not step:  # the episode moved on: asking this again restarts it
                restart_of = restart_of or ep
                continue
            if ck is not None and step._calls and ck not in step._calls:
                continue  # another call's conversation, the same text
            home = step
            break
        if home is None and a.parent_fingerprint:
            for ep, step in reversed(by_fp.get(a.parent_fingerprint, ())):
                if ep.superseded_by is None and ep.steps[-1] is step and step.attempts[0].t_start <= a.t_start:
                    step.t_next = a.t_start
                    home = new_step(ep, a)
                    break
        if home is None:
            ep = Episode(f"e{len(out) + 1:04d}")
            if restart_of is not None and restart_of.superseded_by is None:
                restart_of.superseded_by = ep.key
                ep.restart_of = restart_of.key
            out.append(ep)
            home = new_step(ep, a)
        home.attempts.append(a)
        if ck is not None:
            home._calls.add(ck)
    for ep in out:
        for i, step in enumerate(ep.steps):
            step.served = _served(step, ep.steps[i + 1] if i + 1 < len(ep.steps) else None)
    _add_tool_spans(out, tool_spans(journal))
    return out


def _served(step: Step, nxt: Step | None) -> Attempt | None:
    """The attempt whose answer the agent went on with (see the module's docstring)."""
    if nxt is not None:
        before = [a for a in step.attempts if a.tool_calls and (a.t_end or a.t_start) <= nxt.t_start]
        sent = {h.get("args_sha") for h in nxt.attempts[0].tool_history or ()}
        chosen = [a for a in before if all(c.get("args_sha") in sent for c in a.tool_calls or ())]
        if chosen:
            return chosen[-1]
        done = [a for a in before if a.complete]
        return done[-1] if done else (before[-1] if before else None)
    done = [a for a in step.attempts if a.complete]
    final = [a for a in done if not a.tool_calls]
    return final[-1] if final else (done[-1] if done else None)


def _add_tool_spans(eps: list[Episode], spans: Sequence[ToolSpan]) -> None:
    """Count each marked span in the one tool wait it falls in (a span inside the tool waits of
    several episodes at once is counted in none: it cannot be told whose it was)."""
    gaps = [
        (s.served.t_end, s.t_next, s)
        for ep in eps
        for s in ep.steps
        if s.served is not None and s.served.t_end is not None and s.t_next is not None
    ]
    for sp in spans:
        mid = (sp.t_start + sp.t_end) / 2
        homes = [s for lo, hi, s in gaps if lo - 1e-6 <= mid <= hi + 1e-6]
        if len(homes) == 1:
            homes[0].tool_marked += sp.duration
            homes[0].tool_names.append(sp.name)


# -- what the premium lane bought ----------------------------------------------------------------
def lane_pacing(profile: Any) -> dict[str, dict[str, float]]:
    """Each simulated lane's pacing in profile seconds (``ttft``, ``tokens_per_second``), for the
    ``drill_start`` mark: what a report needs to estimate an episode on another lane."""
    from .simulator import SimSettings

    out = {}
    for name, spec in profile.lanes.items():
        if spec.upstream is None:
            sim = spec.simulator or SimSettings()
            out[name] = {"ttft": float(sim.ttft), "tokens_per_second": float(sim.tokens_per_second)}
    return out


def pacing_of(journal: Journal) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The lanes' pacing in this journal's seconds, and the lanes in profile order (primary
    first), from the ``drill_start`` mark; empty when the drill did not record them."""
    start = next(iter(journal.marks("drill_start")), None)
    if start is None:
        return {}, []
    raw = start.detail.get("pacing")
    order = [str(n) for n in start.detail.get("lanes") or []]
    if not isinstance(raw, Mapping):
        return {}, order
    time_scale = float(start.detail.get("time_scale", 1.0) or 1.0)
    k = time_scale * getattr(journal, "scale", 1.0)  # profile seconds -> this view's seconds
    out = {}
    for name, p in raw.items():
        if isinstance(p, Mapping) and p.get("tokens_per_second"):
            out[str(name)] = {
                "ttft": float(p.get("ttft", 0.0)) * k,
                "tokens_per_second": float(p["tokens_per_second"]) / k,
            }
    return out, order


@dataclass(frozen=True, slots=True)
class Estimate:
    """An episode as it was, and as it would have been with every step on ``lane``."""

    episode: str
    lane: str
    actual: float
    estimated: float

    @property
    def saved(self) -> float:
        return self.estimated - self.actual


def stable_lane(pacing: Mapping[str, Any], order: Sequence[str]) -> str | None:
    """The lane an estimate compares with: the one named ``stable``, else the last lane of the
    profile (the fallback), among lanes whose pacing is known."""
    if "stable" in pacing:
        return "stable"
    known = [n for n in order if n in pacing] or list(pacing)
    return known[-1] if len(known) > 1 else None


def estimate_on(ep: Episode, lane: str, pacing: Mapping[str, Mapping[str, float]]) -> Estimate | None:
    """The episode had every step gone to ``lane`` at once: each step served by another lane is
    replaced by ``lane``'s time to first token plus the same tokens at ``lane``'s pace, with no
    route overhead (the stable lane is taken to stay up); steps ``lane`` served keep their own
    times, and tool waits are the agent's and stay. None for an episode with an unserved step
    or an unknown pace."""
    p = pacing.get(lane)
    actual = ep.metrics().get("total")
    if p is None or actual is None or not ep.steps:
        return None
    est = 0.0
    for s in ep.steps:
        a = s.served
        if a is None:
            return None
        m = s.metrics()
        if a.lane == lane:
            est += m.get("model_wait", 0.0) + m.get("generation", 0.0)
        else:
            est += p["ttft"] + a.tokens / p["tokens_per_second"]
        est += m.get("tool_wait", 0.0)
    return Estimate(ep.key, lane, actual, est if math.isfinite(est) else actual)
