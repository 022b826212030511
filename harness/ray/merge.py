"""One journal from many: every actor's records on the drill's clock, and the dead accounted for.

Each process keeps time on its own monotonic clock from its own start. The drill aligns them the
way NTP does: it asks an actor for its time, notes when it asked and when the answer came, and
takes the actor's time to be the midpoint (the best of a few tries: the one with the shortest
round trip). ``offset`` is then what to add to the actor's times; half that round trip is how
far off it can be, and the merged journal records both per actor (mark ``journal_merge``).

A replica that died took its in-memory journal with it: the drill reads its journal file when it
can reach it (same machine, or a shared directory), and every attempt the coordinator saw it
begin that is missing there is journaled with outcome ``unknown``, its error naming the replica.
Calls an agent actor never reported are ``unknown`` the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..journal import Attempt, Call, EndReason, Journal, Mark, Outcome
from ..jsonl import record_from_json
from .coordinator import Ask

__all__ = ["Alignment", "Source", "align", "merge_into"]

#: window marks every replica's local plan also journals: the coordinator's are the drill's
_COORDINATOR_MARKS = frozenset({"fault_window_open", "fault_window_close"})


@dataclass(slots=True)
class Alignment:
    offset: float  # add to the actor's times to get the drill's
    uncertainty: float  # half the shortest round trip
    #: on one machine (one CLOCK_MONOTONIC for all processes): the estimate minus the true offset
    monotonic_error: float | None = None


@dataclass(slots=True)
class Source:
    """One actor's part of the drill."""

    name: str
    role: str  # coordinator | replica | agents
    alignment: Alignment
    records: dict[str, list[dict[str, Any]]] | None = None  # None: it died before handing them back
    journal_path: str | None = None
    lane: str | None = None
    died: str | None = None  # why it is gone
    calls: list[str] = field(default_factory=list)  # agent actors: the call ids given to it


def align(
    ask_clock: Callable[[], dict[str, float]], now: Callable[[], float], t0: float | None = None, tries: int = 5
) -> Alignment:
    """The offset of an actor's clock from the drill's (see the module docstring)."""
    best: tuple[float, float, dict[str, float]] | None = None
    for _ in range(tries):
        sent = now()
        reply = ask_clock()
        got = now()
        if best is None or got - sent < best[0]:
            best = (got - sent, (sent + got) / 2, reply)
    assert best is not None
    rtt, mid, reply = best
    offset = mid - reply["t"]
    error = offset - (reply["t0"] - t0) if t0 is not None and "t0" in reply else None
    return Alignment(offset=offset, uncertainty=rtt / 2, monotonic_error=error)


def _load(path: str | None) -> dict[str, list[dict[str, Any]]] | None:
    if not path or not Path(path).exists():
        return None
    try:
        j = Journal.load(path)
    except (OSError, ValueError):
        return None
    return {
        "attempts": [a.to_json() for a in j.attempts()],
        "calls": [c.to_json() for c in j.calls()],
        "marks": [m.to_json() for m in j.marks()],
    }


def _shift(obj: dict[str, Any], names: tuple[str, ...], by: float) -> dict[str, Any]:
    for n in names:
        v = obj.get(n)
        if isinstance(v, int | float) and not isinstance(v, bool):
            obj[n] = v + by
    return obj


_ATTEMPT_TIMES = ("t_start", "t_headers", "t_first_token", "t_last_token", "t_end")


def merge_into(
    journal: Journal,
    sources: list[Source],
    started: list[tuple[Ask, float, int]],
    coordinator_offset: float,
    t_stop: float,
) -> dict[str, Any]:
    """Write every source's records into ``journal`` in aligned time order; journal what the
    dead left open as ``unknown``. Returns counts for the drill's summary."""
    attempts: list[Attempt] = []
    calls: list[Call] = []
    marks: list[Mark] = []
    counts: dict[str, Any] = {"attempts": {}, "unknown_from_dead": 0, "dead": []}
    for src in sources:
        records = src.records
        recovered = False
        if records is None:
            records = _load(src.journal_path)
            recovered = records is not None
        off = src.alignment.offset
        got = records or {"attempts": [], "calls": [], "marks": []}
        for raw in got["attempts"]:
            attempts.append(record_from_json(Attempt, _shift(dict(raw), _ATTEMPT_TIMES, off)))
        for raw in got["calls"]:
            calls.append(record_from_json(Call, _shift(dict(raw), ("t_start", "t_end", "t_first_token"), off)))
        for raw in got["marks"]:
            if src.role == "replica" and raw.get("kind") in _COORDINATOR_MARKS:
                continue
            m = record_from_json(Mark, _shift(dict(raw), ("t",), off))
            m.detail = {**m.detail, "actor": src.name}
            marks.append(m)
        counts["attempts"][src.name] = len(got["attempts"])
        if src.died is None:
            continue
        counts["dead"].append(src.name)
        seen = {a["id"] for a in got["attempts"]}
        lost = 0
        if src.role == "replica":
            for ask, t, _seq in started:
                if ask.replica != src.name or ask.attempt_id in seen:
                    continue
                lost += 1
                attempts.append(_unknown_attempt(ask, t + coordinator_offset, t_stop, src.name))
        elif src.role == "agents":
            done = {c["id"] for c in got["calls"]}
            for cid in src.calls:
                if cid not in done:
                    lost += 1
                    calls.append(
                        Call(
                            id=cid,
                            t_start=t_stop,
                            t_end=t_stop,
                            error=f"agent actor {src.name} died",
                            source="agent_actor",
                        )
                    )
        counts["unknown_from_dead"] += lost
        marks.append(
            Mark(
                t=t_stop,
                kind="actor_died",
                lane=src.lane,
                detail={
                    "actor": src.name,
                    "role": src.role,
                    "why": src.died,
                    "journal_recovered": recovered,
                    "journaled_unknown": lost,
                },
            )
        )
    timeline: list[tuple[float, str, Any]] = [(m.t, "m", m) for m in marks]
    timeline += [(c.t_start, "c", c) for c in calls]
    timeline += [(a.t_start, a.id, a) for a in attempts]
    for _t, kind, rec in sorted(timeline, key=lambda x: (x[0], x[1])):
        if kind == "m":
            journal.mark(rec.kind, rec.lane, t=rec.t, **rec.detail)
        elif kind == "c":
            journal.record_call(rec)
        else:
            journal.record(rec)
    journal.mark(
        "journal_merge",
        t=t_stop,
        offsets={s.name: round(s.alignment.offset, 6) for s in sources},
        uncertainty={s.name: round(s.alignment.uncertainty, 6) for s in sources},
        monotonic_error={s.name: s.alignment.monotonic_error for s in sources},
        wall=time.time(),
    )
    counts["total_attempts"] = len(attempts)
    return counts


def _unknown_attempt(ask: Ask, t: float, t_end: float, replica: str) -> Attempt:
    return Attempt(
        id=ask.attempt_id,
        lane=ask.lane,
        t_start=t,
        wall_start=0.0,
        model=ask.model,
        stream=ask.stream,
        fingerprint=ask.fingerprint,
        call_id=ask.call_id,
        t_end=t_end,
        end_reason=EndReason.UNKNOWN.value,
        outcome=Outcome.UNKNOWN.value,
        error={"message": f"replica {replica} died with this attempt open: its outcome is unknown"},
    )
