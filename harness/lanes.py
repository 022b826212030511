"""Start and stop the lanes of a profile, in this event loop or in a background thread.

Sync code (a pytest test with the sync ``openai`` client, a CLI drill) needs the lanes running
while it blocks; :class:`BackgroundLanes` runs them on an event loop in a daemon thread and hands
back their URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from .faults.plan import FaultPlan
from .journal import Journal
from .lag import watch_lag
from .lanestate import LaneState, link_peers
from .playback import cassette_upstream
from .ports import binding
from .profile import LaneSpec, Profile
from .proxy import HttpUpstream, Lane, SimulatorUpstream
from .proxy.hooks import FaultHook
from .recorder import recording
from .simulator import SimSettings, Simulator

__all__ = ["BackgroundLanes", "LaneSet", "make_lane"]

T = TypeVar("T")


def make_lane(spec: LaneSpec, journal: Journal, *, time_scale: float = 1.0, faults: FaultHook | None = None) -> Lane:
    """A :class:`Lane` for ``spec`` (not started). Simulator times shrink with ``time_scale``."""
    if spec.upstream is not None:
        upstream: Any = HttpUpstream(
            spec.upstream,
            read_timeout=spec.read_timeout,
            max_event_bytes=spec.max_event_bytes,
            max_response_bytes=spec.max_response_bytes,
        )
        if spec.record:
            upstream = recording(upstream, spec.record, spec.name)
    elif spec.replay is not None:
        upstream = cassette_upstream(spec, journal, time_scale)
    else:
        state = LaneState(spec.name, spec.capabilities, time_scale=time_scale)
        upstream = SimulatorUpstream(Simulator((spec.simulator or SimSettings()).scaled(time_scale), lane=state))
    return Lane(
        spec.name, spec.dialect, upstream, journal, host=spec.host, port=spec.port, faults=faults, time_scale=time_scale
    )


class LaneSet:
    """All lanes of a profile, sharing one journal and one fault plan."""

    def __init__(
        self,
        profile: Profile,
        journal: Journal | None = None,
        *,
        time_scale: float | None = None,
        faults: FaultHook | None = None,
    ) -> None:
        self.profile = profile
        self.journal = journal if journal is not None else Journal()
        self.time_scale = profile.time_scale if time_scale is None else time_scale
        self.faults = faults if faults is not None else _default_plan(profile, self.journal, self.time_scale)
        self.lanes: dict[str, Lane] = {}
        self._lag: asyncio.Future[None] | None = None  # the loop watching its own lag

    @property
    def urls(self) -> dict[str, str]:
        return {name: lane.url for name, lane in self.lanes.items()}

    async def start(self) -> LaneSet:
        try:
            for name, spec in self.profile.lanes.items():
                lane = make_lane(spec, self.journal, time_scale=self.time_scale, faults=self.faults)
                with binding(f"lane {name}", spec.host, spec.port):
                    await lane.start()
                self.lanes[name] = lane
            link_peers(self.lanes.values())
        except BaseException:
            await self.stop()
            raise
        if not self.journal.attempts() and not self.journal.calls():
            self.journal.restart_clock()  # the schedule starts when an agent can reach the lanes
        bind = getattr(self.faults, "bind", None)
        if bind is not None:
            bind(self)
        self._lag = asyncio.ensure_future(watch_lag(self.journal))
        return self

    async def stop(self) -> None:
        lag, self._lag = self._lag, None
        if lag is not None:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
        stop = getattr(self.faults, "stop", None)
        if stop is not None:
            await stop()
        for lane in list(self.lanes.values()):
            await lane.stop()

    async def __aenter__(self) -> LaneSet:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _default_plan(profile: Profile, journal: Journal, time_scale: float) -> FaultHook:
    return FaultPlan(profile, journal, time_scale=time_scale)


class BackgroundLanes:
    """A :class:`LaneSet` on its own event loop in a daemon thread, for synchronous callers."""

    def __init__(self, lanes: LaneSet) -> None:
        self.lanes = lanes
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="routechaos-lanes", daemon=True)
        self._started = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float | None = 30.0) -> T:
        """Run a coroutine on the lanes' loop and wait for its result."""
        fut: Future[T] = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        return fut.result(timeout)

    def start(self) -> BackgroundLanes:
        self._thread.start()
        self._started = True
        self.call(self.lanes.start)
        return self

    def stop(self) -> None:
        if not self._started:
            return
        try:
            self.call(self.lanes.stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)
            self.loop.close()
            self._started = False

    @property
    def urls(self) -> dict[str, str]:
        return self.lanes.urls

    @property
    def journal(self) -> Journal:
        return self.lanes.journal

    def __enter__(self) -> BackgroundLanes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
