"""A replica's fault hook: every decision from the coordinator, every rendering done here.

A lane asks its :class:`~harness.proxy.hooks.FaultHook` synchronously, once per attempt; a
coordinator in another process answers asynchronously. :class:`CoordinatedHook` bridges the two
without touching the lane: ``decide`` sends the :class:`~harness.ray.coordinator.Ask` at once
and returns a :class:`_Pending` intervention, which the lane awaits first (``before``). There it
gets the decision, rebuilds the interventions with this replica's own fault objects (the same
classes, from the same profile: a 429 here is byte for byte the 429 of a one-process drill), and
records the fault on the attempt. The single-process path keeps its
:class:`~harness.faults.plan.FaultPlan` and never sees any of this.

The client is anything with the :class:`Client` methods: :class:`LocalClient` calls a
:class:`~harness.ray.coordinator.Coordinator` in this process (tests, the benchmark's baseline);
:class:`harness.ray.actors.ActorClient` calls the coordinator actor.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from ..dialects.base import ErrorKind, ErrorSpec, Event, Rendered
from ..faults.capacity import _Admitted, _Refused, _Slot
from ..faults.plan import FAULT_HEADER, Composite, FaultPlan
from ..journal import Journal
from ..profile import Profile
from ..proxy.hooks import AttemptContext, Intervention, StreamItem
from ..ratelimit import Decision, Ticket
from .coordinator import Ask, Coordinator, Part

__all__ = ["Client", "CoordinatedHook", "LocalClient"]


class Client(Protocol):
    """How a replica reaches the coordinator."""

    async def decide(self, ask: Ask) -> list[Part]: ...
    async def snapshot(self, handle: int) -> Any: ...
    async def slot_wait(self, handle: int) -> bool: ...
    def finished(self, handle: int, tokens: int) -> None: ...


class LocalClient:
    """A coordinator in this process (no serialisation, no network): tests and baselines."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    async def decide(self, ask: Ask) -> list[Part]:
        return self.coordinator.decide(ask)

    async def snapshot(self, handle: int) -> Any:
        return self.coordinator.snapshot(handle)

    async def slot_wait(self, handle: int) -> bool:
        return await self.coordinator.slot_wait(handle)

    def finished(self, handle: int, tokens: int) -> None:
        self.coordinator.finished(handle, tokens)


class CoordinatedHook:
    """The :class:`~harness.proxy.hooks.FaultHook` of one replica's lanes."""

    def __init__(self, profile: Profile, journal: Journal, client: Client, replica: str) -> None:
        #: this replica's own fault objects: they render and transform, never decide
        self.local = FaultPlan(profile, journal)
        self.journal = journal
        self.client = client
        self.replica = replica
        self.needs_text = any(
            e.schedule.match is not None and e.schedule.match.contains is not None for e in self.local.entries
        )
        #: seconds from asking to knowing, per attempt: what coordination costs a replica under load
        self.latencies: list[float] = []

    def decide(self, ctx: AttemptContext) -> Intervention:
        req = ctx.request
        ask = Ask(
            lane=ctx.lane,
            replica=self.replica,
            attempt_id=ctx.attempt.id,
            call_id=ctx.attempt.call_id,
            fingerprint=req.fingerprint,
            requested=ctx.headers.get(FAULT_HEADER, ""),
            model=req.model,
            prompt_tokens=req.prompt_tokens,
            text=req.text if self.needs_text else "",
            last_role=req.last_role,
            stream=req.stream,
        )
        ctx.extra["journal"] = self.journal
        t = time.perf_counter()
        fut = asyncio.ensure_future(self.client.decide(ask))
        fut.add_done_callback(lambda _f: self.latencies.append(time.perf_counter() - t))
        return _Pending(self, fut)

    def bind(self, lanes: Any) -> None:
        """Lane-level faults (a lane that stops listening) act on this replica's listeners. Its
        plan journals window marks too; the merge keeps the coordinator's, once for the drill."""
        self.local.bind(lanes)

    async def stop(self) -> None:
        await self.local.stop()

    def build(self, parts: list[Part]) -> Intervention | None:
        out: list[Intervention] = []
        for i, kind, handle, data in parts:
            fault = self.local.entries[i].fault
            if kind == "fault":
                out.append(fault)
            elif kind == "admitted":
                out.append(_Admitted(fault, _RemoteLimiter(self.client, handle, data), Ticket(0, False, handle)))  # type: ignore[arg-type]
            elif kind == "refused":
                assert isinstance(data, Decision)
                out.append(_Refused(fault, _RemoteLimiter(self.client, 0, data.snapshot), data))  # type: ignore[arg-type]
            elif kind == "slot":
                out.append(self._slot(fault, handle, data))
        if not out:
            return None
        return out[0] if len(out) == 1 else Composite(out)

    def _slot(self, fault: Any, handle: int, state: str) -> _Slot:
        slots = _RemoteSlots(self.client, handle)
        fut: asyncio.Future[None] | None = None
        if state == "queued":
            fut = asyncio.get_running_loop().create_future()
            slots.watch(fut)
        return _Slot(fault, slots, fut, state)  # type: ignore[arg-type]


class _RemoteLimiter:
    """The part of a :class:`~harness.ratelimit.RateLimiter` an admitted or refused attempt
    touches, with the limiter itself at the coordinator."""

    def __init__(self, client: Client, handle: int, snap: Any) -> None:
        self.client = client
        self.handle = handle
        self.snap = snap

    def snapshot(self) -> Any:
        return self.snap

    async def refresh(self) -> None:
        if self.handle:
            snap = await self.client.snapshot(self.handle)
            if snap is not None:
                self.snap = snap

    def release(self, ticket: Ticket, completion_tokens: int = 0) -> None:
        if self.handle:
            handle, self.handle = self.handle, 0
            self.client.finished(handle, completion_tokens)


class _RemoteSlots:
    """A concurrency cap's slots at the coordinator: one attempt's view of them."""

    def __init__(self, client: Client, handle: int) -> None:
        self.client = client
        self.handle = handle
        self._waiter: asyncio.Future[Any] | None = None

    def watch(self, fut: asyncio.Future[None]) -> None:
        async def wait() -> None:
            granted = await self.client.slot_wait(self.handle)
            if granted and not fut.done():
                fut.set_result(None)

        self._waiter = asyncio.ensure_future(wait())

    def _end(self) -> None:
        if self._waiter is not None:
            self._waiter.cancel()
        if self.handle:
            handle, self.handle = self.handle, 0
            self.client.finished(handle, 0)

    def abandon(self, fut: asyncio.Future[None]) -> None:
        self._end()  # the coordinator hands back a slot granted at the same moment

    def release(self) -> None:
        self._end()


class _Pending(Intervention):
    """An attempt whose decision is on its way: awaited before anything else happens."""

    is_fault = False  # the lane journals the fault only once known (in ``before``)

    def __init__(self, hook: CoordinatedHook, decision: asyncio.Future[list[Part]]) -> None:
        self.hook = hook
        self.decision = decision
        self.iv: Intervention | None = None
        self.name = "pending"

    def describe(self) -> dict[str, Any]:
        return self.iv.describe() if self.iv is not None else {"name": None}

    async def before(self, ctx: AttemptContext) -> Rendered | None:
        try:
            # shielded: a client that leaves now must not cancel a decision the coordinator made
            # (its state is handed back by ``finished`` once the answer arrives)
            parts = await asyncio.shield(self.decision)
        except Exception as exc:  # the coordinator is gone: the drill cannot decide truthfully
            ctx.attempt.error = {"message": f"fault coordinator unreachable: {type(exc).__name__}: {exc}"}
            return ctx.dialect.render_error(ErrorSpec(ErrorKind.SERVER_ERROR), ctx.request)
        self.iv = self.hook.build(parts)
        if self.iv is None:
            return None
        self.name = self.iv.name
        if self.iv.is_fault:
            described = self.iv.describe()
            ctx.attempt.fault = described if described.get("name") else None
        return await self.iv.before(ctx)

    async def upstream_response(self, ctx: AttemptContext, response: Any) -> None:
        if self.iv is not None:
            await self.iv.upstream_response(ctx, response)

    async def after_headers(self, ctx: AttemptContext, status: int) -> None:
        if self.iv is None:
            return
        await self.iv.after_headers(ctx, status)
        # the counters as they stand when the headers go out, as a one-process lane sends them
        parts = self.iv.parts if isinstance(self.iv, Composite) else [self.iv]
        for p in parts:
            limiter = getattr(p, "limiter", None)
            if isinstance(limiter, _RemoteLimiter):
                with contextlib.suppress(Exception):
                    await limiter.refresh()

    def transform(self, ctx: AttemptContext, events: AsyncIterator[list[Event]]) -> AsyncIterator[StreamItem]:
        if self.iv is None:
            return events  # type: ignore[return-value]
        return self.iv.transform(ctx, events)

    def response_headers(self, ctx: AttemptContext, status: int) -> list[tuple[str, str]]:
        return self.iv.response_headers(ctx, status) if self.iv is not None else []

    def finished(self, ctx: AttemptContext) -> None:
        if self.iv is not None:
            self.iv.finished(ctx)
        elif not self.decision.done():
            self.decision.add_done_callback(lambda f: self._late(f, ctx))
        elif not self.decision.cancelled() and self.decision.exception() is None:
            self._late(self.decision, ctx)  # decided, but the attempt ended before it was used

    def _late(self, fut: asyncio.Future[list[Part]], ctx: AttemptContext) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        iv = self.hook.build(fut.result())
        if iv is not None:
            iv.finished(ctx)
