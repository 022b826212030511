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
    """A replica's way to the :class:`CoordinatorActor` (see :class:`~harness.ray.hook.Client`)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def decide(self, ask: Ask) -> list[Part]:
        return await self.handle.decide.remote(ask)  # type: ignore[no-any-return]

    async def snapshot(self, handle: int) -> Any:
        return await self.handle.snapshot.remote(handle)

    async def slot_wait(self, handle: int) -> bool:
        return await self.handle.slot_wait.remote(handle)  # type: ignore[no-any-return]

    def finished(self, handle: int, tokens: int) -> None:
        self.handle.finished.remote(handle, tokens)  # answered by nobody: the attempt is over


@ray.remote(max_concurrency=MAX_CONCURRENCY)
class LaneReplica:
    """One process serving one lane; ``name`` is ``LANE.K``."""

    def __init__(self, profile: Profile, lane: str, name: str, journal_path: str | None, coordinator: Any) -> None:
        self.name = name
        self.journal = ReplicaJournal(name, journal_path)
        spec = profile.lanes[lane]
        own = replace(profile, lanes={lane: spec})  # this lane alone listens here
        hook = CoordinatedHook(profile, self.journal, ActorClient(coordinator), name)
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
        return {**_records(self.journal), "pid": os.getpid()}


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
