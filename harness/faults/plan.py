"""The fault plan: a profile's faults and schedules, deciding per attempt what goes wrong.

The plan is the lanes' :class:`~harness.proxy.hooks.FaultHook`. For each attempt it walks the
profile's faults for that lane in order, asks each schedule (pure, seeded) whether it applies,
and lets the fault choose its intervention; several may combine (a rate limiter that admits the
request and a stream cut on the same attempt). Decisions depend only on the attempt's order on
its lane, its call, the drill time and the seed.

Timed schedules (windows, flapping) also run on a timer: it records ``fault_window_open`` /
``fault_window_close`` marks at the exact times the schedule gives, and drives lane-level faults
(a lane that stops listening, then comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..dialects.base import Event, Rendered
from ..journal import Journal
from ..lanemap import UnknownLane
from ..profile import FaultSpec, Profile
from ..proxy import Lane
from ..proxy.hooks import AttemptContext, Intervention, StreamItem
from ..schedule import AttemptFacts, Schedule, parse_schedule
from .base import Fault, make_fault

__all__ = ["FAULT_HEADER", "Composite", "FaultPlan", "PlanEntry"]

FAULT_HEADER = "x-routechaos-fault"
HORIZON = 24 * 3600.0


class LaneGroup(Protocol):
    """The running lanes a plan is bound to (``lanes.LaneSet`` is one).

    Named here, not imported: the lane set builds its default plan, so it imports this module.
    """

    lanes: dict[str, Lane]


@dataclass(slots=True)
class PlanEntry:
    spec: FaultSpec
    fault: Fault
    schedule: Schedule
    index: int
    n: dict[str, int] = field(default_factory=dict)  # lane -> attempts seen
    call_n: dict[tuple[str, str], int] = field(default_factory=dict)
    applied: int = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "fault": self.spec.fault,
            "lane": self.spec.lane,
            "schedule": self.schedule.describe(),
            "attrs": self.spec.attrs,
            "applied": self.applied,
        }


class Composite(Intervention):
    """Several interventions on one attempt: the first to answer in ``before`` wins; stream
    transforms chain in profile order; response headers add up."""

    def __init__(self, parts: list[Intervention]) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)

    def describe(self) -> dict[str, Any]:
        faults = [p.describe() for p in self.parts if getattr(p, "is_fault", True)]
        if not faults:
            return {"name": None}
        head = dict(faults[0])
        if len(faults) > 1:
            head["also"] = [f["name"] for f in faults[1:]]
        return head

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        for p in self.parts:
            r = await p.before(ctx)
            if r is not None:
                return r
        return None

    async def upstream_response(self, ctx: AttemptContext, response: Any) -> None:
        for p in self.parts:
            await p.upstream_response(ctx, response)

    async def after_headers(self, ctx: AttemptContext, status: int) -> None:
        for p in self.parts:
            await p.after_headers(ctx, status)

    def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:
        out: AsyncIterator[Any] = events
        for p in self.parts:
            out = p.transform(ctx, out)
        return out

    def touches_stream(self) -> bool:
        return any(p.touches_stream() for p in self.parts)

    def response_headers(self, ctx: AttemptContext, status: int) -> list[tuple[str, str]]:
        return [h for p in self.parts for h in p.response_headers(ctx, status)]

    def finished(self, ctx: AttemptContext) -> None:
        for p in self.parts:
            p.finished(ctx)


class FaultPlan:
    """The :class:`FaultHook` of a drill's lanes."""

    def __init__(self, profile: Profile, journal: Journal, *, time_scale: float | None = None) -> None:
        self.seed = profile.seed
        self.lane_names = list(profile.lanes)
        self.journal = journal
        self.time_scale = profile.time_scale if time_scale is None else time_scale
        self.entries: list[PlanEntry] = []
        #: state faults share across lanes of this drill (rate limiters with ``shared: NAME``)
        self.shared_state: dict[str, Any] = {}
        self._next_index = 0
        self._lanes: LaneGroup | None = None
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._restores: set[asyncio.Future[None]] = set()
        for spec in profile.faults:
            self.add(spec)

    # -- live changes -------------------------------------------------------------------------
    def add(self, spec: FaultSpec) -> PlanEntry:
        """Add a fault (also while lanes run: the control API uses this). A fault on a lane the
        drill does not have raises :class:`~harness.lanemap.UnknownLane`."""
        if spec.lane != "*" and spec.lane not in self.lane_names:
            raise UnknownLane(spec.lane, self.lane_names)
        if any(e.name == spec.name for e in self.entries):
            base, k = spec.name, 2
            while any(e.name == f"{base}#{k}" for e in self.entries):
                k += 1
            spec.name = f"{base}#{k}"
        entry = PlanEntry(spec, make_fault(spec.fault, spec.attrs), parse_schedule(spec.schedule), self._next_index)
        self._next_index += 1
        self.entries.append(entry)
        if self._lanes is not None:
            self._start_timer(entry)
        return entry

    def remove(self, name: str) -> PlanEntry:
        """Remove a fault by name; a lane it had taken down comes back."""
        for i, e in enumerate(self.entries):
            if e.name == name:
                del self.entries[i]
                task = self._timers.pop(name, None)
                if task is not None:
                    task.cancel()
                if self._lanes is not None and e.fault.lane_level:
                    for lane in self._lanes_of(e):
                        task = asyncio.ensure_future(e.fault.set_active(lane, False, self))  # type: ignore[attr-defined]
                        self._restores.add(task)
                        task.add_done_callback(self._restores.discard)
                return e
        raise KeyError(name)

    def clear(self) -> None:
        for e in list(self.entries):
            self.remove(e.name)

    # -- per attempt --------------------------------------------------------------------------
    def decide(self, ctx: AttemptContext) -> Intervention | None:
        requested = {x.strip() for x in ctx.headers.get(FAULT_HEADER, "").split(",") if x.strip()}
        ctx.extra["shared_state"] = self.shared_state
        ctx.extra["journal"] = self.journal
        # the call this attempt belongs to, as far as is known now: its header, else the one call
        # running in-process when its conversation was first seen, else its conversation (the
        # same across retries and lanes)
        call_key = ctx.attempt.call_id or self.journal.call_key(ctx.request.fingerprint)
        t = self.journal.now()
        chosen: list[Intervention] = []
        req = ctx.request
        for e in self.entries:
            if e.fault.lane_level or (e.spec.lane != "*" and e.spec.lane != ctx.lane):
                continue
            m = e.schedule.match
            if m is not None and not m.matches(req.model, req.text, req.last_role):
                continue  # not a request this fault is about: it does not count towards nth, first ...
            n = e.n[ctx.lane] = e.n.get(ctx.lane, 0) + 1
            ck = (ctx.lane, call_key)
            call_n = e.call_n[ck] = e.call_n.get(ck, 0) + 1
            facts = AttemptFacts(
                n=n,
                t=t,
                call_key=call_key,
                call_n=call_n,
                requested=bool(requested & {e.name, e.spec.fault}),
                model=req.model,
                text=req.text,
                last_role=req.last_role,
            )
            scheduled = e.schedule.applies(
                facts, seed=self.seed, salt=f"{e.index}:{e.name}", time_scale=self.time_scale
            )
            if scheduled and e.schedule.max is not None and e.applied >= e.schedule.max:
                scheduled = False
            self._select(ctx, e, scheduled, chosen)
        return self._combined(chosen)

    @staticmethod
    def _select(ctx: AttemptContext, e: PlanEntry, scheduled: bool, chosen: list[Intervention]) -> None:
        """Ask entry ``e``'s fault for its intervention (it may act unscheduled, as a limiter
        does) and count it as applied when it is a fault."""
        iv = e.fault.select(ctx, scheduled)
        if iv is not None:
            chosen.append(iv)
            if getattr(iv, "is_fault", True):
                e.applied += 1

    @staticmethod
    def _combined(chosen: list[Intervention]) -> Intervention | None:
        if not chosen:
            return None
        return chosen[0] if len(chosen) == 1 else Composite(chosen)

    # -- timed schedules and lane-level faults ------------------------------------------------
    def bind(self, lanes: LaneGroup) -> None:
        """Called by the lane set once lanes listen: start the window timers."""
        self._lanes = lanes
        for e in self.entries:
            self._start_timer(e)

    def _lanes_of(self, e: PlanEntry) -> list[Lane]:
        assert self._lanes is not None
        if e.spec.lane == "*":
            return list(self._lanes.lanes.values())
        lane = self._lanes.lanes.get(e.spec.lane)
        return [lane] if lane is not None else []

    def _start_timer(self, e: PlanEntry) -> None:
        if not (e.schedule.is_timed or e.fault.lane_level):
            return
        self._timers[e.name] = asyncio.ensure_future(self._run_windows(e))

    async def _run_windows(self, e: PlanEntry) -> None:
        lane_name = None if e.spec.lane == "*" else e.spec.lane
        for t, on in e.schedule.edges(HORIZON, self.time_scale):
            if math.isinf(t):
                return
            delay = t - self.journal.now()
            if delay > 0:
                await asyncio.sleep(delay)
            kind = "fault_window_open" if on else "fault_window_close"
            if e.schedule.is_timed:
                self.journal.mark(kind, lane_name, t=t, fault=e.name, fault_type=e.spec.fault)
            if e.fault.lane_level:
                for lane in self._lanes_of(e):
                    await e.fault.set_active(lane, on, self)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Cancel timers and bring every lane-level fault's lanes back."""
        for task in self._timers.values():
            task.cancel()
        for task in self._timers.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._timers.clear()
        if self._lanes is not None:
            for e in self.entries:
                if e.fault.lane_level:
                    for lane in self._lanes_of(e):
                        with contextlib.suppress(Exception):
                            await e.fault.set_active(lane, False, self)  # type: ignore[attr-defined]

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.entries]
