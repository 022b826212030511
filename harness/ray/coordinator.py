"""The one owner of a drill's fault decisions when a lane runs as several replicas.

A lane decides each attempt from counts and time: the n-th attempt on the lane, the attempts of a
call, a token bucket, a concurrency cap and its queue, a seeded draw keyed by the attempt's
number. Split over replicas, each with its own :class:`~harness.faults.plan.FaultPlan`, a rate
limit of 120 a minute would admit 120 per replica and "the 3rd attempt" would happen once per
replica. So with replicas every lane asks one :class:`Coordinator` instead: it holds the drill's
real ``FaultPlan`` (the same code a single-process drill runs, unchanged) and answers each
:class:`Ask` with the plan's decision in a form that crosses a process boundary (:data:`Part`).
The decision sequence is therefore exactly the one a one-replica drill makes for the same order
of arrival at the coordinator; :attr:`Coordinator.log` keeps that order.

What stays with the coordinator (state): the limiter behind an admitted attempt (released with
its completion tokens when the attempt ends), the concurrency slot or queue place of a capped
attempt. What the replica does itself (no state): rendering the provider's error, pacing,
cutting or corrupting the stream, with its own copy of the fault object (built from the same
profile, so the same attributes).

Pure asyncio, no Ray: :mod:`harness.ray.actors` wraps this class in an actor, and tests and the
benchmark drive it in-process too.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from ..faults.capacity import _Admitted, _Refused, _Slot
from ..faults.plan import FAULT_HEADER, Composite, FaultPlan
from ..journal import Attempt, Journal
from ..profile import Profile
from ..proxy.hooks import AttemptContext, Intervention

__all__ = ["Ask", "Coordinator", "Part", "Started"]

#: one intervention of a decision, as it crosses to the replica:
#: ``(entry index, kind, handle, data)``; kinds: ``fault`` (the entry's fault applies, stateless),
#: ``admitted`` (a rate limiter admitted it; data: the snapshot), ``refused`` (data: the
#: :class:`~harness.ratelimit.Decision`), ``slot`` (a concurrency cap; data: admitted, queued or
#: overflow). ``handle`` names the coordinator-side state to release (0: none).
Part = tuple[int, str, int, Any]


@dataclass(frozen=True, slots=True)
class Ask:
    """What a replica tells the coordinator about one attempt (small and picklable)."""

    lane: str
    replica: str
    attempt_id: str  # replica-qualified, as in the merged journal
    call_id: str | None
    fingerprint: str
    requested: str  # the request's x-routechaos-fault header ("" when none)
    model: str | None
    prompt_tokens: int
    text: str = ""  # only when some schedule matches on content (else not sent)
    last_role: str | None = None
    stream: bool = False


@dataclass(slots=True)
class Started:
    """An attempt the coordinator saw begin: what the drill journals as ``unknown`` if the
    replica that served it dies with its journal."""

    ask: Ask
    t: float  # coordinator clock (its journal's seconds)
    seq: int


@dataclass(slots=True)
class _Req:
    """The facts of a request the plan and the stateful faults read (a stand-in for
    :class:`~harness.dialects.base.RequestInfo`, which a replica does not ship whole)."""

    model: str | None
    text: str
    last_role: str | None
    fingerprint: str
    prompt_tokens: int
    stream: bool = False


@dataclass(slots=True)
class _Held:
    iv: Intervention
    ctx: AttemptContext


@dataclass
class Coordinator:
    """The drill's fault plan and every count, bucket and queue it decides from."""

    profile: Profile
    time_scale: float | None = None
    journal: Journal = field(default_factory=Journal)
    #: (seq, attempt id, replica, lane, fault names applied) in decision order
    log: list[tuple[int, str, str, str, tuple[str, ...]]] = field(default_factory=list, init=False)
    started: dict[str, Started] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.plan = FaultPlan(self.profile, self.journal, time_scale=self.time_scale)
        self.time_scale = self.plan.time_scale
        self._index = {id(e.fault): i for i, e in enumerate(self.plan.entries)}
        self._held: dict[int, _Held] = {}
        self._next = 0
        self._seq = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> float:
        """Start the drill's clock (every replica listens by now) and the window timers, which
        journal ``fault_window_*`` marks here, once for the drill. Lane-level faults (a lane
        that stops listening) act on listeners, so each replica runs those itself."""
        self.journal.restart_clock()
        self.plan.bind(_NoLanes())  # type: ignore[arg-type]
        return self.journal.now()

    async def stop(self) -> None:
        await self.plan.stop()

    def clock(self) -> float:
        """This coordinator's drill time, for the merge's clock alignment."""
        return self.journal.now()

    # -- per attempt --------------------------------------------------------------------------
    def decide(self, ask: Ask) -> list[Part]:
        """The plan's decision for one attempt, in arrival order."""
        self._seq += 1
        t = self.journal.now()
        self.started[ask.attempt_id] = Started(ask, t, self._seq)
        attempt = Attempt(id=ask.attempt_id, lane=ask.lane, t_start=t, wall_start=0.0, call_id=ask.call_id)
        req = _Req(ask.model, ask.text, ask.last_role, ask.fingerprint, ask.prompt_tokens, ask.stream)
        headers = {FAULT_HEADER: ask.requested} if ask.requested else {}
        ctx = AttemptContext(ask.lane, attempt, None, req, headers, self.plan.time_scale)  # type: ignore[arg-type]
        iv = self.plan.decide(ctx)
        parts = [] if iv is None else iv.parts if isinstance(iv, Composite) else [iv]
        out = [self._part(p, ctx) for p in parts]
        names = tuple(self.plan.entries[i].name for i, kind, _, data in out if _is_fault(kind, data))
        self.log.append((self._seq, ask.attempt_id, ask.replica, ask.lane, names))
        return out

    def _part(self, iv: Intervention, ctx: AttemptContext) -> Part:
        fault = getattr(iv, "fault", iv)
        i = self._index.get(id(fault))
        if i is None:  # an entry added after start: index it now
            self._index = {id(e.fault): k for k, e in enumerate(self.plan.entries)}
            i = self._index[id(fault)]
        if isinstance(iv, _Admitted):
            return (i, "admitted", self._hold(iv, ctx), iv.limiter.snapshot())
        if isinstance(iv, _Refused):
            return (i, "refused", 0, iv.decision)
        if isinstance(iv, _Slot):
            handle = self._hold(iv, ctx) if iv.state in ("admitted", "queued") else 0
            return (i, "slot", handle, iv.state)
        if iv is fault:
            return (i, "fault", 0, None)
        raise TypeError(
            f"fault {self.plan.entries[i].name!r} chose an intervention ({type(iv).__name__}) that holds state the "
            "coordinator cannot share across replicas yet; run this profile with replicas: 1"
        )

    def _hold(self, iv: Intervention, ctx: AttemptContext) -> int:
        self._next += 1
        self._held[self._next] = _Held(iv, ctx)
        return self._next

    # -- state held for an attempt ------------------------------------------------------------
    def snapshot(self, handle: int) -> Any:
        """The admitting limiter's counters now (headers are sent after the upstream answered)."""
        held = self._held.get(handle)
        return held.iv.limiter.snapshot() if held is not None else None  # type: ignore[attr-defined]

    async def slot_wait(self, handle: int) -> bool:
        """Wait until a queued attempt gets its slot; False if it already left the queue."""
        held = self._held.get(handle)
        fut = getattr(held.iv, "fut", None) if held is not None else None
        if fut is None:
            return held is not None
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(fut)
        if fut.cancelled():
            return False
        assert held is not None
        held.iv.fut = None  # type: ignore[attr-defined]
        held.iv.holding = True  # type: ignore[attr-defined]
        return True

    def finished(self, handle: int, tokens: int = 0) -> None:
        """The attempt ended, however it ended: charge its completion tokens, free its slot or
        its place in the queue (a slot granted at the same moment is handed back)."""
        held = self._held.pop(handle, None)
        if held is None:
            return
        held.ctx.attempt.tokens = tokens
        held.iv.finished(held.ctx)

    def replica_died(self, replica: str) -> list[Started]:
        """A replica is gone: free whatever its open attempts held, and say which they were."""
        gone = [s for s in self.started.values() if s.ask.replica == replica]
        for handle, held in list(self._held.items()):
            if held.ctx.attempt.id.startswith(replica + ":"):
                self.finished(handle)
        return gone

    def decisions(self) -> list[tuple[int, str, str, str, tuple[str, ...]]]:
        return list(self.log)

    def started_attempts(self) -> list[Started]:
        return list(self.started.values())

    def marks(self) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.journal.marks()]


def _is_fault(kind: str, data: Any) -> bool:
    return kind in ("fault", "refused") or (kind == "slot" and data != "admitted")


class _NoLanes:
    """The coordinator listens on nothing: lane-level faults are the replicas' to act on."""

    lanes: dict[str, Any] = {}  # noqa: RUF012
