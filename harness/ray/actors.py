"""The Ray actors of a drill: the coordinator, a lane replica, an agent actor.

Each is an async actor (one asyncio loop per process, serving Ray calls and sockets alike):

* :class:`CoordinatorActor` wraps :class:`~harness.ray.coordinator.Coordinator`: every decision.
* :class:`LaneReplica` runs one lane of the profile (a :class:`~harness.lanes.LaneSet` of that
  lane alone) with a :class:`~harness.ray.hook.CoordinatedHook`, and journals locally: a JSONL
  file on its node, attempt ids prefixed by the replica's name.
* :class:`AgentActor` runs many asyncio agents over its shard of the prompts, journaling each
  call as :meth:`harness.drill.Drill.acall` does, with the call id sent as a header.

This module imports ray: only :mod:`harness.ray.engine` imports it, when a drill asks for Ray.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from ..drill import answer_text, call_scope
from ..journal import Call, Journal, Outcome
from ..lanes import LaneSet
from ..profile import Profile
from .coordinator import Ask, Coordinator, Part
from .hook import CoordinatedHook

__all__ = ["ActorClient", "AgentActor", "CoordinatorActor", "LaneReplica"]

#: concurrent Ray calls an actor serves at once (every attempt of a replica is one decide call)
MAX_CONCURRENCY = 10_000


class ReplicaJournal(Journal):
    """A replica's (or agent actor's) own journal: ids carry its name, so merged ids stay unique."""

    def __init__(self, owner: str, path: str | Path | None = None) -> None:
        super().__init__(path)
        self.owner = owner

    def next_id(self, prefix: str = "a") -> str:
        return f"{self.owner}:{super().next_id(prefix)}"


def _records(journal: Journal) -> dict[str, list[dict[str, Any]]]:
    return {
        "attempts": [a.to_json() for a in journal.attempts()],
        "calls": [c.to_json() for c in journal.calls()],
        "marks": [m.to_json() for m in journal.marks()],
    }


def _clock(journal: Journal) -> dict[str, float]:
    """This process's drill time, for the merge's alignment (and the raw clock, to cross-check
    on one machine where every process shares ``CLOCK_MONOTONIC``)."""
    return {"t": journal.now(), "monotonic": time.monotonic(), "t0": journal.t0}


@ray.remote(max_concurrency=MAX_CONCURRENCY)
class CoordinatorActor:
    def __init__(self, profile: Profile, time_scale: float | None = None) -> None:
        self.c = Coordinator(profile, time_scale)

    async def start(self) -> float:
        return self.c.start()

    async def clock(self) -> dict[str, float]:
        return _clock(self.c.journal)

    async def decide(self, ask: Ask) -> list[Part]:
        return self.c.decide(ask)

    async def batch(self, ops: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Several decide / snapshot / finished calls of one replica, run in their order."""
        c = self.c
        table = {"decide": c.decide, "snapshot": c.snapshot, "finished": c.finished}
        return [table[method](*args) for method, args in ops]

    async def snapshot(self, handle: int) -> Any:
        return self.c.snapshot(handle)

    async def slot_wait(self, handle: int) -> bool:
        return await self.c.slot_wait(handle)

    async def finished(self, handle: int, tokens: int = 0) -> None:
        self.c.finished(handle, tokens)

    async def replica_died(self, replica: str) -> None:
        self.c.replica_died(replica)

    async def result(self) -> dict[str, Any]:
        await self.c.stop()
        started = [(s.ask, s.t, s.seq) for s in self.c.started_attempts()]
        return {"decisions": self.c.decisions(), "started": started, "marks": self.c.marks(), "pid": os.getpid()}


class ActorClient:
    """A replica's way to the :class:`CoordinatorActor` (see :class:`~harness.ray.hook.Client`).

    Calls made in one turn of the replica's event loop go as one Ray call (:meth:`CoordinatorActor.batch`),
    in the order they were made: a Ray call costs milliseconds of CPU on a loaded machine, a
    decision tens of microseconds, so under load one call carries the decisions, counter reads and
    releases of every attempt that arrived meanwhile. The coordinator runs a batch in order, so
    the attempt order it decides in is still the order the replica asked in."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self._ops: list[tuple[str, tuple[Any, ...], asyncio.Future[Any] | None]] = []
        self._scheduled = False
        self._sends: set[asyncio.Future[Any]] = set()
        #: Ray calls sent and operations they carried (the benchmark reports the ratio)
        self.calls = 0
        self.ops = 0

    def _queue(self, method: str, args: tuple[Any, ...], want: bool) -> asyncio.Future[Any] | None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future() if want else None
        self._ops.append((method, args, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        ops, self._ops = self._ops, []
        self._scheduled = False
        if not ops:
            return
        self.calls += 1
        self.ops += len(ops)
        ref = self.handle.batch.remote([(m, a) for m, a, _ in ops])
        task = asyncio.ensure_future(self._deliver(ref, ops))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _deliver(self, ref: Any, ops: list[tuple[str, tuple[Any, ...], asyncio.Future[Any] | None]]) -> None:
        try:
            results = await ref
        except Exception as exc:
            for _, _, fut in ops:
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
            return
        for (_, _, fut), result in zip(ops, results, strict=True):
            if fut is not None and not fut.done():
                fut.set_result(result)

    async def decide(self, ask: Ask) -> list[Part]:
        fut = self._queue("decide", (ask,), True)
        assert fut is not None
        return await fut  # type: ignore[no-any-return]

    async def snapshot(self, handle: int) -> Any:
        fut = self._queue("snapshot", (handle,), True)
        assert fut is not None
        return await fut

    async def slot_wait(self, handle: int) -> bool:
        return await self.handle.slot_wait.remote(handle)  # type: ignore[no-any-return]

    def finished(self, handle: int, tokens: int) -> None:
        self._queue("finished", (handle, tokens), False)  # answered by nobody: the attempt is over


@ray.remote(max_concurrency=MAX_CONCURRENCY)
class LaneReplica:
    """One process serving one lane; ``name`` is ``LANE.K``."""

    def __init__(self, profile: Profile, lane: str, name: str, journal_path: str | None, coordinator: Any) -> None:
        self.name = name
        self.journal = ReplicaJournal(name, journal_path)
        spec = profile.lanes[lane]
        own = replace(profile, lanes={lane: spec})  # this lane alone listens here
        hook = self.hook = CoordinatedHook(profile, self.journal, ActorClient(coordinator), name)
        self.lanes = LaneSet(own, self.journal, faults=hook)

    async def start(self, host: str | None = None) -> str:
        """Listen (on ``host`` if given, else the profile's); the lane's URL as others reach it."""
        if host is not None:
            for spec in self.lanes.profile.lanes.values():
                spec.host = host
        await self.lanes.start()
        url = next(iter(self.lanes.urls.values()))
        if host == "0.0.0.0":
            url = url.replace("0.0.0.0", ray.util.get_node_ip_address())
        return url

    async def clock(self) -> dict[str, float]:
        return _clock(self.journal)

    async def open_attempts(self) -> int:
        return sum(len(lane._open) for lane in self.lanes.lanes.values())

    async def stop(self) -> dict[str, Any]:
        """Stop the lane (attempts still open are journaled ``unknown``) and hand back the journal."""
        await self.lanes.stop()
        self.journal.close()
        client = self.hook.client
        return {
            **_records(self.journal),
            "pid": os.getpid(),
            "decide_seconds": list(self.hook.latencies),
            "ray_calls": getattr(client, "calls", 0),
            "ray_ops": getattr(client, "ops", 0),
        }

    async def bench_decide(self, n: int, at_once: int = 1) -> list[float]:
        """Seconds per decision round trip from this replica, ``at_once`` in flight (benchmark)."""
        lane = next(iter(self.lanes.profile.lanes))
        client = self.hook.client
        out: list[float] = []
        for k in range(0, n, at_once):

            async def one(i: int) -> None:
                ask = Ask(lane, self.name, f"{self.name}:bench{i}", None, f"fp{i}", "", "gpt-4o", 10)
                t = time.perf_counter()
                parts = await client.decide(ask)
                out.append(time.perf_counter() - t)
                for _i, _kind, handle, _data in parts:
                    if handle:
                        client.finished(handle, 0)

            await asyncio.gather(*(one(k + j) for j in range(min(at_once, n - k))))
        return out


@ray.remote(max_concurrency=MAX_CONCURRENCY)
class AgentActor:
    """Many asyncio agents in one process, each call journaled here with its own id."""

    def __init__(self, name: str, journal_path: str | None) -> None:
        self.name = name
        self.journal = ReplicaJournal(name, journal_path)
        self.journal.restart_clock()
        self.done = 0

    async def clock(self) -> dict[str, float]:
        return _clock(self.journal)

    async def progress(self) -> int:
        return self.done

    async def run(
        self,
        factory: Callable[..., Any],
        calls: list[tuple[str, str]],
        urls: dict[str, list[str]],
        concurrency: int,
        index: int = 0,
    ) -> dict[str, Any]:
        """Run ``(call id, prompt)`` pairs, ``concurrency`` at once, with agents from
        ``factory(urls, index)`` (an async callable ``await agent(prompt)`` per agent task)."""
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for item in calls:
            queue.put_nowait(item)

        sent = 0

        async def worker(k: int) -> None:
            nonlocal sent
            agent = factory(urls, index * concurrency + k)
            try:
                while not queue.empty():
                    call_id, prompt = queue.get_nowait()
                    await self._call(agent, call_id, prompt)
            finally:
                sent += getattr(agent, "attempts_made", 0)
                close = getattr(agent, "aclose", None)
                if close is not None:
                    await close()

        await asyncio.gather(*(worker(k) for k in range(min(concurrency, len(calls)) or 1)))
        self.journal.close()
        return {**_records(self.journal), "pid": os.getpid(), "attempts_sent": sent}

    async def _call(self, agent: Any, call_id: str, prompt: str) -> None:
        task = asyncio.current_task()
        call = Call(
            id=call_id,
            t_start=self.journal.now(),
            source="agent_actor",
            thread=self.name,
            task=task.get_name() if task is not None else None,
        )
        try:
            with call_scope(call_id):
                result = await agent(prompt)
        except Exception as exc:
            call.outcome, call.error, call.error_type = Outcome.ERROR.value, str(exc)[:500], type(exc).__name__
        else:
            call.text = answer_text(result)
            lane = result.get("lane") if isinstance(result, dict) else getattr(result, "lane", None)
            call.lane = lane if isinstance(lane, str) else None
            err = result.get("error") if isinstance(result, dict) else getattr(result, "error", None)
            if err:
                call.outcome, call.error, call.error_type = Outcome.ERROR.value, str(err), "error"
            else:
                call.outcome = Outcome.OK.value
        call.t_end = self.journal.now()
        self.journal.record_call(call)
        self.done += 1
