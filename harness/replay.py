"""Replaying a drill: the same profile and seed, and the fault decisions of its journal, in order.

A drill's journal says, for every attempt, which fault was applied (``Attempt.fault``: the fault's
name and attributes, and the names of others on the same attempt under ``also``). A
:class:`ReplayPlan` is a :class:`~harness.faults.plan.FaultPlan` of the same profile whose
decision for the k-th attempt on a lane is the decision the journal recorded for the k-th attempt
on that lane: a profile fault is applied exactly when the old attempt had it, whatever its
schedule would say now (a seeded probability, a time window, the n-th attempt). So a fixed agent
faces, attempt for attempt, what the flawed one failed on. Attempts past the recorded ones get
no fault.

Only attempts a dialect could parse take part (a malformed request never reaches the plan). What
runs on timers rather than per attempt (lane-level faults such as ``refuse`` windows, toxics)
follows the profile's clock as in any drill.

After the run, :func:`diverged` compares the two journals lane by lane, attempt by attempt: the
request (conversation fingerprint, model, stream, path) and the decision, and names the first
attempt where they part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .faults.plan import FaultPlan
from .journal import Attempt, Journal
from .profile import Profile
from .proxy.hooks import AttemptContext, Intervention

__all__ = ["Divergence", "ReplayPlan", "decisions", "diverged", "journal_of", "replayed_attempts"]


def journal_of(path: str | Path) -> Path:
    """The journal of a run directory (``journal.jsonl`` in it), or the journal file itself."""
    p = Path(path)
    if p.is_dir():
        p = p / "journal.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"no journal at {p} (give a drill's run directory or its journal.jsonl)")
    return p


def replayed_attempts(journal: Journal) -> dict[str, list[Attempt]]:
    """Each lane's attempts that asked the fault plan, in the order they arrived (their ids)."""
    out: dict[str, list[Attempt]] = {}
    for a in sorted(journal.attempts(), key=lambda a: a.id):
        if a.fingerprint is not None:  # parsed: the plan decided for it
            out.setdefault(a.lane, []).append(a)
    return out


def decisions(fault: dict[str, Any] | None) -> list[str]:
    """The fault names an attempt's journaled ``fault`` holds, in profile order."""
    if not fault or not fault.get("name"):
        return []
    return [str(fault["name"]), *(str(x) for x in fault.get("also") or ())]


class ReplayPlan(FaultPlan):
    """A :class:`FaultPlan` deciding from a recorded journal instead of the schedules."""

    def __init__(self, profile: Profile, journal: Journal, recorded: Journal, *, time_scale: float | None = None):
        super().__init__(profile, journal, time_scale=time_scale)
        self.recorded = replayed_attempts(recorded)
        self.seen: dict[str, int] = {}

    def decide(self, ctx: AttemptContext) -> Intervention | None:
        k = self.seen.get(ctx.lane, 0)
        self.seen[ctx.lane] = k + 1
        old = self.recorded.get(ctx.lane, [])
        fault = old[k].fault if k < len(old) else None
        wanted = decisions(fault)
        head = {key: v for key, v in (fault or {}).items() if key != "also"}
        ctx.extra["shared_state"] = self.shared_state
        ctx.extra["journal"] = self.journal
        entries = [
            e
            for e in self.entries
            if not e.fault.lane_level and (e.spec.lane == "*" or e.spec.lane == ctx.lane)
        ]
        # the entry that made the recorded head fault: the same name and attributes, else the name
        chosen_entries: set[int] = set()
        for i, name in enumerate(wanted):
            cands = [e for e in entries if e.fault.name == name and id(e) not in chosen_entries]
            exact = [e for e in cands if i == 0 and e.fault.describe() == head]
            pick = (exact or cands or [None])[0]
            if pick is not None:
                chosen_entries.add(id(pick))
        chosen: list[Intervention] = []
        for e in entries:
            self._select(ctx, e, id(e) in chosen_entries, chosen)
        return self._combined(chosen)


@dataclass
class Divergence:
    """Where a replayed drill parted from the recorded one."""

    matched: int = 0
    request_differs: int = 0
    decision_differs: int = 0
    missing: int = 0  # recorded attempts the new run never made
    extra: int = 0  # attempts of the new run past the recorded ones
    first: dict[str, Any] | None = None
    lanes: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def same(self) -> bool:
        return not (self.request_differs or self.decision_differs or self.missing or self.extra)

    def to_json(self) -> dict[str, Any]:
        return {
            "same": self.same,
            "matched": self.matched,
            "request_differs": self.request_differs,
            "decision_differs": self.decision_differs,
            "missing": self.missing,
            "extra": self.extra,
            "first": self.first,
            "lanes": self.lanes,
        }

    def summary(self) -> str:
        if self.same:
            return f"the replay followed the recorded drill: {self.matched} attempts, same requests, same decisions"
        parts = [f"{self.matched} attempts matched"]
        for n, what in (
            (self.request_differs, "asked something else"),
            (self.decision_differs, "got another decision"),
            (self.missing, "recorded attempts never made"),
            (self.extra, "attempts past the recorded ones"),
        ):
            if n:
                parts.append(f"{n} {what}")
        text = "the replay diverged: " + ", ".join(parts)
        if self.first:
            f = self.first
            text += f"; first at attempt {f['n']} on lane {f['lane']} ({f['what']})"
        return text


def _request(a: Attempt) -> tuple[Any, ...]:
    return (a.fingerprint, a.model, a.stream, a.method, a.path.split("?", 1)[0])


def diverged(recorded: Journal, new: Journal) -> Divergence:
    """Compare the attempts of two drills per lane, in arrival order."""
    old_by, new_by = replayed_attempts(recorded), replayed_attempts(new)
    out = Divergence()
    firsts: list[tuple[float, dict[str, Any]]] = []
    for lane in sorted(set(old_by) | set(new_by)):
        olds: Sequence[Attempt] = old_by.get(lane, [])
        news: Sequence[Attempt] = new_by.get(lane, [])
        counts = {"matched": 0, "request_differs": 0, "decision_differs": 0, "missing": 0, "extra": 0}
        first: tuple[float, dict[str, Any]] | None = None
        for k in range(max(len(olds), len(news))):
            o = olds[k] if k < len(olds) else None
            n = news[k] if k < len(news) else None
            if o is None:
                kind, what = "extra", "the new run made an attempt the recorded one did not"
            elif n is None:
                kind, what = "missing", "the recorded drill made an attempt the new run did not"
            elif _request(o) != _request(n):
                kind = "request_differs"
                what = f"request {o.fingerprint} ({o.model}) recorded, {n.fingerprint} ({n.model}) now"
            elif decisions(o.fault) != decisions(n.fault):
                kind = "decision_differs"
                what = f"decision {decisions(o.fault) or ['none']} recorded, {decisions(n.fault) or ['none']} now"
            else:
                kind, what = "matched", ""
            counts[kind] += 1
            if kind != "matched" and first is None:
                t = (n or o).t_start  # type: ignore[union-attr]
                first = (
                    t,
                    {"lane": lane, "n": k + 1, "kind": kind, "what": what, "recorded": o and o.id, "new": n and n.id},
                )
        if first is not None:
            firsts.append(first)
        out.lanes[lane] = counts
        for key, v in counts.items():
            setattr(out, key, getattr(out, key) + v)
    if firsts:
        out.first = min(firsts, key=lambda x: x[0])[1]
    return out
