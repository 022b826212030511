"""A drill on Ray: each lane as ``replicas`` actors, the workload as agent actors, one coordinator,
one merged journal. Everything after the run (checks, report, ``assert_graceful``) is the plain
:class:`~harness.drill.Drill`'s, reading the merged journal as it reads any other.

The three-line version::

    with RayDrill("f01-rate-limit-retry-after", replicas={"primary": 2}) as drill:
        drill.run_agents(light_agent, prompts, actors=2, concurrency=100)
    drill.assert_graceful()

``address`` is a Ray cluster's (``ray://head:10001``, or ``auto`` on a cluster node); without it
the drill starts a local Ray on this machine and shuts it down afterwards. On a cluster pass
``bind_host="0.0.0.0"``: each replica listens on its node and is reached at that node's address.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import ray

from ..drill import Drill, last_window_close
from ..lanemap import LaneDict
from .actors import AgentActor, CoordinatorActor, LaneReplica
from .front import Front
from .merge import Source, align, merge_into

__all__ = ["RayDrill"]


class RayDrill(Drill):
    """A :class:`~harness.drill.Drill` whose lanes and workload run as Ray actors."""

    def __init__(
        self,
        profile: Any,
        *,
        address: str | None = None,
        replicas: Mapping[str, int] | None = None,
        bind_host: str | None = None,
        actor_dir: str | Path | None = None,
        ray_init: Mapping[str, Any] | None = None,
        front: bool = True,
        replica_cpus: float | None = None,
        **kw: Any,
    ) -> None:
        """``replicas`` overrides the profile's ``replicas:`` per lane; ``actor_dir`` is where each
        actor journals locally (default: beside the journal, else a temporary directory);
        ``ray_init`` goes to ``ray.init`` when this drill starts Ray itself; ``front`` puts a
        small spreading front (one address per lane, connections dealt round robin to the
        replicas) before lanes with several replicas, for agents that take one URL per lane;
        ``replica_cpus`` reserves CPUs per replica (1 on a cluster: one replica per core, Ray
        spreading them over the nodes; by default Ray's own, which packs them anywhere)."""
        kw.pop("control", None)  # the control API drives one process's plan: not on Ray yet
        super().__init__(profile, **kw)
        if self.profile.toxics or self.network_layer:
            raise ValueError(
                f"profile {self.profile.name}: toxics (the Toxiproxy layer) are not run on Ray yet; "
                "drill it without --ray"
            )
        for lane, n in (replicas or {}).items():
            self.profile.lanes[lane].replicas = int(n)
        self.address = address
        self.bind_host = bind_host
        self.ray_init = dict(ray_init or {})
        self.want_front = front
        self.replica_cpus = replica_cpus
        self.actor_dir = Path(actor_dir) if actor_dir else None
        self.coordinator: Any = None
        self.replicas: dict[str, list[tuple[str, Any]]] = {}
        self.replica_urls: dict[str, list[str]] = {}
        self.agents: list[tuple[str, Any, list[str]]] = []
        self._agent_results: dict[str, Any] = {}
        self._agent_clocks: dict[str, Any] = {}  # alignment of agent actors already ended
        self.sources: list[Source] = []
        self.deaths: dict[str, str] = {}
        self.merge_counts: dict[str, Any] = {}
        self._started_ray = False
        self._front: Front | None = None
        self._running = False
        self._agent_n = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def _dir(self) -> Path:
        if self.actor_dir is None:
            import tempfile

            base = self.journal_path.parent if self.journal_path else Path(tempfile.mkdtemp(prefix="routechaos-ray-"))
            self.actor_dir = base / "actors"
        self.actor_dir.mkdir(parents=True, exist_ok=True)
        return self.actor_dir

    def start(self) -> RayDrill:
        p = self.profile
        self.journal.mark(
            "drill_start",
            profile=p.name,
            source=p.source,
            seed=p.seed,
            time_scale=self.time_scale,
            lanes=list(p.lanes),
            checks=[{c.name: c.params} for c in p.checks],
            last_window_close=last_window_close(p),
            capabilities=self.capabilities,
            engine="ray",
            replicas={name: spec.replicas for name, spec in p.lanes.items()},
        )
        if not ray.is_initialized():
            opts = {"include_dashboard": False, "logging_level": "warning", **self.ray_init}
            ray.init(address=self.address, **opts)
            self._started_ray = True
        try:
            self._start_actors()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_actors(self) -> None:
        d = self._dir()
        self.coordinator = CoordinatorActor.options(name=None).remote(self.profile, self.time_scale)
        starts = []
        for lane, spec in self.profile.lanes.items():
            for k in range(spec.replicas):
                name = f"{lane}.{k}"
                opts: dict[str, Any] = {"scheduling_strategy": "SPREAD"}
                if self.replica_cpus is not None:
                    opts["num_cpus"] = self.replica_cpus
                actor = LaneReplica.options(**opts).remote(
                    self.profile, lane, name, str(d / f"{name}.jsonl"), self.coordinator
                )
                self.replicas.setdefault(lane, []).append((name, actor))
                starts.append((lane, actor.start.remote(self.bind_host)))
        for lane, ref in starts:
            self.replica_urls.setdefault(lane, []).append(ray.get(ref))
        urls = {lane: u[0] for lane, u in self.replica_urls.items()}
        if self.want_front and any(len(u) > 1 for u in self.replica_urls.values()):
            self._front = Front(self.replica_urls, host=self.bind_host or "127.0.0.1").start()
            urls.update(self._front.urls)
        self._urls = LaneDict(urls)
        # every replica listens: the drill's clock and the fault schedule start now, together
        self.journal.restart_clock()
        ray.get(self.coordinator.start.remote())
        self._running = True

    def stop(self, *, interrupted: str | None = None, interrupted_at: float | None = None) -> None:
        if not self._running and not self._started_ray:
            return
        try:
            if self._running:
                self._collect()
        finally:
            self._running = False
            if self._front is not None:
                self._front.stop()
                self._front = None
            if interrupted:
                at = self.journal.now() if interrupted_at is None else interrupted_at
                self.journal.mark("drill_stop", interrupted=True, reason=interrupted, interrupted_at=at)
            else:
                self.journal.mark("drill_stop")
            self.journal.close()
            if self._started_ray:
                ray.shutdown()
                self._started_ray = False

    def _align(self, actor: Any) -> Any:
        return align(lambda: ray.get(actor.clock.remote(), timeout=30), self.journal.now, self.journal.t0)

    def _collect(self) -> None:
        """Stop every actor, gather its journal, merge (see :mod:`harness.ray.merge`)."""
        sources: list[Source] = []
        for lane, actors in self.replicas.items():
            for name, actor in actors:
                sources.append(self._gather(actor, name, "replica", lane, actor.stop))
        for name, actor, calls in self.agents:
            src = self._gather(actor, name, "agents", None, None)
            src.calls = calls
            sources.append(src)
        coord = self._gather(self.coordinator, "coordinator", "coordinator", None, None)
        result: dict[str, Any] = {}
        if coord.died is None:
            try:
                result = ray.get(self.coordinator.result.remote(), timeout=60)
            except Exception as exc:
                coord.died = f"{type(exc).__name__}: {exc}"
                self.deaths["coordinator"] = coord.died
        coord.records = {"attempts": [], "calls": [], "marks": result.get("marks", [])}
        self.decisions = result.get("decisions", [])
        sources.append(coord)
        self.sources = sources
        self.merge_counts = merge_into(
            self.journal, sources, result.get("started", []), coord.alignment.offset, self.journal.now()
        )
        for actor in [a for _, acts in self.replicas.items() for _, a in acts] + [a for _, a, _ in self.agents]:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        with contextlib.suppress(Exception):
            ray.kill(self.coordinator)

    def _gather(self, actor: Any, name: str, role: str, lane: str | None, stop: Any) -> Source:
        from .merge import Alignment

        src = Source(name, role, Alignment(0.0, 0.0), journal_path=str(self._dir() / f"{name}.jsonl"), lane=lane)
        if name in self.deaths:
            src.died = self.deaths[name]
            return src
        try:
            ended = self._agent_clocks.get(name)
            src.alignment = ended if ended is not None else self._align(actor)
            if stop is not None:
                src.records = ray.get(stop.remote(), timeout=60)
            elif role == "agents":
                src.records = self._agent_results.get(name)
        except Exception as exc:  # RayActorError, GetTimeoutError: the actor is gone or stuck
            src.died = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            self.deaths[name] = src.died
        return src

    # -- workload -----------------------------------------------------------------------------
    def run_agents(
        self,
        factory: Callable[..., Any],
        prompts: Iterable[str],
        *,
        actors: int = 2,
        concurrency: int = 50,
        timeout: float = 600.0,
        on_progress: Callable[[RayDrill], None] | None = None,
    ) -> dict[str, Any]:
        """Run ``prompts`` as calls, sharded round robin over ``actors`` agent actors, each running
        ``concurrency`` asyncio agents from ``factory(urls, index)`` (``urls``: lane -> replica
        URLs). ``on_progress`` is called about every 50 ms while they run (the kill test uses it).
        Returns calls per actor and the actors that died."""
        d = self._dir()
        items = [(f"call-{self._agent_n + i:05d}", p) for i, p in enumerate(prompts)]
        self._agent_n += len(items)
        shards = [items[k::actors] for k in range(actors)]
        refs = {}
        for k, shard in enumerate(shards):
            name = f"agents.{len(self.agents)}"
            actor = AgentActor.options(scheduling_strategy="SPREAD").remote(name, str(d / f"{name}.jsonl"))
            self.agents.append((name, actor, [cid for cid, _ in shard]))
            refs[actor.run.remote(factory, shard, self.replica_urls, concurrency, k)] = name
        deadline = time.monotonic() + timeout
        pending = list(refs)
        while pending and time.monotonic() < deadline:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.05)
            for ref in done:
                name = refs[ref]
                try:
                    self._agent_results[name] = ray.get(ref)
                    actor = next(a for n, a, _ in self.agents if n == name)
                    # its journal is here now: align its clock, then free its process for the next shard
                    self._agent_clocks[name] = self._align(actor)
                    ray.kill(actor)
                except Exception as exc:
                    self.deaths.setdefault(name, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            if on_progress is not None:
                on_progress(self)
        for ref in pending:
            self.deaths.setdefault(refs[ref], f"still running after {timeout:g}s")
        return {"calls": {n: len(r["calls"]) for n, r in self._agent_results.items()}, "dead": dict(self.deaths)}

    def open_attempts(self, lane: str, k: int) -> int:
        """Attempts replica ``k`` of ``lane`` is serving right now."""
        return int(ray.get(self.replicas[lane][k][1].open_attempts.remote(), timeout=30))

    def agent_progress(self, k: int) -> int:
        """Calls agent actor ``k`` has finished so far."""
        return int(ray.get(self.agents[k][1].progress.remote(), timeout=30))

    def kill_agent(self, k: int) -> str:
        """Kill agent actor ``k`` now: the calls it had not finished are journaled unknown."""
        name, actor, _ = self.agents[k]
        ray.kill(actor, no_restart=True)
        self.deaths[name] = f"killed at drill time {self.journal.now():.3f}s"
        return name

    def kill_replica(self, lane: str, k: int) -> str:
        """Kill one replica now (as a crashed node would): the drill reports it, journals what it
        had open as unknown, and frees what the coordinator held for it."""
        name, actor = self.replicas[lane][k]
        ray.kill(actor, no_restart=True)
        self.deaths[name] = f"killed at drill time {self.journal.now():.3f}s"
        self.coordinator.replica_died.remote(name)
        return name

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until no live replica has an attempt open."""
        deadline = time.monotonic() + timeout
        while self._running and time.monotonic() < deadline:
            live = [a for acts in self.replicas.values() for n, a in acts if n not in self.deaths]
            try:
                if not sum(ray.get([a.open_attempts.remote() for a in live], timeout=5)):
                    return
            except Exception:
                return
            time.sleep(0.02)

    def evaluate(self, checks: Any = None) -> Any:
        if self._running:
            raise RuntimeError("stop() the Ray drill first: checks read the merged journal")
        return super().evaluate(checks)

    def died_summary(self) -> list[str]:
        """One line per actor that died: what the drill says about it."""
        out = []
        for name, why in self.deaths.items():
            lost = next((m.detail for m in self.journal.marks("actor_died") if m.detail.get("actor") == name), {})
            out.append(
                f"actor {name} died ({why}); {lost.get('journaled_unknown', '?')} open attempts or calls journaled "
                f"as unknown; its own journal {'recovered' if lost.get('journal_recovered') else 'not recovered'}"
            )
        return out
